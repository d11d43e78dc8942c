using StreamSpace.Contracts;

namespace StreamSpace.Api.Features.Sessions;

/// <summary>
/// The session state machine: pending → starting → running; running → hibernating → hibernated → waking → running;
/// → stopping → stopped; any state → failed. One place decides which changes are legal.
/// </summary>
public static class SessionStateMachine
{
    /// <summary>States that hold a place on an agent and count against the user's quota.</summary>
    public static readonly SessionState[] Active =
    [
        SessionState.Pending, SessionState.Starting, SessionState.Running, SessionState.Hibernating,
        SessionState.Hibernated, SessionState.Waking, SessionState.Stopping,
    ];

    /// <summary><see cref="Active"/> as the database's <c>state</c> column spells them, for <c>state = ANY(@ActiveNames)</c>.</summary>
    public static readonly string[] ActiveNames = [.. Active.Select(state => state.ToName())];

    /// <summary>The state a user's request moves the session to, or null when the request is illegal from <paramref name="from"/>.</summary>
    public static SessionState? AfterRequest(SessionAction action, SessionState from) => (action, from) switch
    {
        (SessionAction.Stop, SessionState.Stopped) => null,
        (SessionAction.Stop, _) => SessionState.Stopping,
        (SessionAction.Hibernate, SessionState.Running) => SessionState.Hibernating,
        (SessionAction.Wake, SessionState.Hibernated) => SessionState.Waking,
        _ => null,
    };

    /// <summary>
    /// Whether an agent's report may move the session from <paramref name="from"/> to <paramref name="to"/>. A report
    /// never undoes a user's request in flight (stopping stays stopping until stopped) nor revives a finished session.
    /// </summary>
    public static bool AcceptsReport(SessionState from, SessionState to) => to != SessionState.Pending && from switch
    {
        SessionState.Stopped => false,
        SessionState.Failed => to is SessionState.Stopped,
        SessionState.Stopping => to is SessionState.Stopped or SessionState.Failed,
        SessionState.Hibernating => to is SessionState.Hibernated or SessionState.Stopped or SessionState.Failed,
        SessionState.Waking => to is SessionState.Running or SessionState.Stopped or SessionState.Failed,
        SessionState.Running => to is not SessionState.Starting,
        _ => true,
    };
}
