namespace StreamSpace.Api.Features.Sessions;

/// <summary>
/// The session state machine: pending → starting → running; running → hibernating → hibernated → waking → running;
/// → stopping → stopped; any state → failed. One place decides which changes are legal.
/// </summary>
public static class SessionStates
{
    public const string Pending = "pending";
    public const string Starting = "starting";
    public const string Running = "running";
    public const string Hibernating = "hibernating";
    public const string Hibernated = "hibernated";
    public const string Waking = "waking";
    public const string Stopping = "stopping";
    public const string Stopped = "stopped";
    public const string Failed = "failed";

    /// <summary>States that hold a place on an agent and count against the user's quota.</summary>
    public static readonly string[] Active = [Pending, Starting, Running, Hibernating, Hibernated, Waking, Stopping];

    /// <summary>The state a user's request moves the session to, or null when the request is illegal from <paramref name="from"/>.</summary>
    public static string? AfterRequest(string action, string from) => (action, from) switch
    {
        ("stop", Stopped) => null,
        ("stop", _) => Stopping,
        ("hibernate", Running) => Hibernating,
        ("wake", Hibernated) => Waking,
        _ => null,
    };

    /// <summary>
    /// Whether an agent's report may move the session from <paramref name="from"/> to <paramref name="to"/>. A report
    /// never undoes a user's request in flight (stopping stays stopping until stopped) nor revives a finished session.
    /// </summary>
    public static bool AcceptsReport(string from, string to) => to != Pending && from switch
    {
        Stopped => false,
        Failed => to is Stopped,
        Stopping => to is Stopped or Failed,
        Hibernating => to is Hibernated or Stopped or Failed,
        Waking => to is Running or Stopped or Failed,
        Running => to is not Starting,
        _ => true,
    };
}
