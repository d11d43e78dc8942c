using StreamSpace.Web.Components.Shared;
using StreamSpace.Web.Features.Api;

namespace StreamSpace.Web.Features.Sessions;

public static class SessionActions
{
    /// <summary>Asks the API to stop, hibernate or wake a session; the new state then arrives as an event.</summary>
    public static async Task<ApiProblem?> RunAsync(this ApiSession api, SessionDto session, SessionTable.SessionAction action)
    {
        var result = action switch
        {
            SessionTable.SessionAction.Stop => await api.DeleteAsync(ApiRoutes.Session(session.Id)),
            SessionTable.SessionAction.Hibernate => await api.PostAsync<System.Text.Json.JsonElement>(ApiRoutes.SessionAction(session.Id, "hibernate"), null),
            _ => await api.PostAsync<System.Text.Json.JsonElement>(ApiRoutes.SessionAction(session.Id, "wake"), null),
        };
        return result.Problem;
    }

    /// <summary>Replaces or adds <paramref name="session"/>, newest first.</summary>
    public static List<SessionDto> Upsert(this List<SessionDto> sessions, SessionDto session)
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
