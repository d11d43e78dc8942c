namespace StreamSpace.Api.Features.Sessions;

/// <summary>A session waiting too long to start: where, for how long, and the last reason given.</summary>
public sealed record StuckSession(string Id, string State, string? Reason, string? AgentId, double Seconds);

/// <summary>A session and the agent it is placed on.</summary>
public sealed record PlacedSession(string Id, string AgentId);

/// <summary>What the diagnostics read about sessions. The Sessions feature defines it and <see cref="SessionStore"/> implements it.</summary>
public interface ISessionHealth
{
    /// <summary>Up to 20 pending or starting sessions unchanged for longer than <paramref name="olderThan"/>, oldest first.</summary>
    Task<IReadOnlyList<StuckSession>> StuckAsync(TimeSpan olderThan, CancellationToken cancellationToken);

    /// <summary>Every active session placed on an agent.</summary>
    Task<IReadOnlyList<PlacedSession>> ActiveAsync(CancellationToken cancellationToken);

    /// <summary>Up to 20 running sessions.</summary>
    Task<IReadOnlyList<PlacedSession>> RunningAsync(CancellationToken cancellationToken);
}
