using StreamSpace.Api.Features.Audit;
using StreamSpace.Contracts;

namespace StreamSpace.Api.Features.Sessions;

/// <summary>A session as recordings need it: whose it is, what runs it, and whether it is to be recorded.</summary>
public sealed record RecordedSession(string Id, Guid UserId, string? Username, string Template, string? AgentId, SessionState State, bool Record);

/// <summary>
/// What the Recordings feature needs of sessions. The Sessions feature defines and implements it
/// (<see cref="RecordedSessions"/>); the <c>sessions</c> table stays its own.
/// </summary>
public interface IRecordedSessions
{
    /// <summary>Any session, whoever asks (the callers are admins and agents).</summary>
    Task<RecordedSession?> FindAsync(string sessionId, CancellationToken cancellationToken);

    /// <summary>
    /// Marks the session to be recorded (sessions.record), audited as <c>session.recorded</c> by <paramref name="actor"/>,
    /// and tells its live clients; false when it does not exist.
    /// </summary>
    Task<bool> MarkRecordedAsync(string sessionId, Actor actor, CancellationToken cancellationToken);

    /// <summary>The running sessions on the agent that are to be recorded, to ask it again when it reconnects.</summary>
    Task<IReadOnlyList<string>> RecordedOnAsync(string agentId, CancellationToken cancellationToken);
}
