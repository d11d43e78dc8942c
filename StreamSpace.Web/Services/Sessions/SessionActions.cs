using StreamSpace.Contracts;
using StreamSpace.Contracts.Api;
using StreamSpace.Web.Services.Api;

namespace StreamSpace.Web.Services.Sessions;

public static class SessionActions
{
    /// <summary>Asks the API to stop, hibernate or wake a session; the new state then arrives as an event.</summary>
    public static async Task<ApiError?> RunAsync(this ApiSession api, SessionResponse session, SessionAction action)
    {
        // Stopping is DELETE /sessions/{id}; the other actions are POSTs named after them.
        return action == SessionAction.Stop
            ? (await api.DeleteAsync(ApiRoutes.Session(session.Id))).Problem
            : (await api.PostAsync<SessionResponse>(ApiRoutes.SessionAction(session.Id, action.ToName()), null)).Problem;
    }

    /// <summary>Replaces or adds <paramref name="session"/>, newest first.</summary>
    public static List<SessionResponse> Upsert(this List<SessionResponse> sessions, SessionResponse session)
    {
        var index = sessions.FindIndex(s => s.Id == session.Id);
        if (index >= 0)
        {
            sessions[index] = session;
        }
        else
        {
            sessions.Insert(0, session);
        }

        return sessions;
    }
}
