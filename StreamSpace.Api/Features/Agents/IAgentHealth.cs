using StreamSpace.Contracts;

namespace StreamSpace.Api.Features.Agents;

/// <summary>An agent's liveness and what it reported about itself, as the diagnostics judge it.</summary>
/// <param name="Status">As recorded (online or offline), not derived from the last heartbeat.</param>
/// <param name="ReachedUrl">The hub URL as this API saw the agent's request arrive.</param>
/// <param name="Checks">The agent's own checks of its platform, as JSON.</param>
public sealed record AgentHealth(
    string Id, string Status, DateTime? LastHeartbeat, int HeartbeatIntervalSeconds, int? ClockSkewMs, int? ProtocolVersion, bool Revoked,
    string? ControlPlaneUrl, string? ReachedUrl, string Checks)
{
    public IReadOnlyList<AgentCheck> ReportedChecks() =>
        System.Text.Json.JsonSerializer.Deserialize<List<AgentCheck>>(Checks, AgentProtocol.Json) ?? [];
}

/// <summary>A command an agent was sent and has not acknowledged.</summary>
public sealed record UnansweredCommand(Guid Id, string CommandType, string AgentId, double Seconds);

/// <summary>A refused agent id: how often in the last hour, when last, and why.</summary>
public sealed record AgentRefusal(string AgentId, int Count, DateTimeOffset LastAt, string Reason);

/// <summary>What the diagnostics read about agents. The Agents feature defines and implements it.</summary>
public interface IAgentHealth
{
    /// <summary>Every registered agent, by id.</summary>
    Task<IReadOnlyList<AgentHealth>> ListAsync(CancellationToken cancellationToken);

    /// <summary>The agent's socket, if it is connected to this instance: a probe opens tunnels through it.</summary>
    AgentSocket? Socket(string agentId);

    /// <summary>Registered agents refused within the period, by any replica.</summary>
    Task<IReadOnlyList<AgentRefusal>> RecentRefusalsAsync(TimeSpan within, CancellationToken cancellationToken);

    /// <summary>Up to 20 commands sent more than 30 seconds ago and not acknowledged, oldest first.</summary>
    Task<IReadOnlyList<UnansweredCommand>> UnansweredCommandsAsync(CancellationToken cancellationToken);
}
