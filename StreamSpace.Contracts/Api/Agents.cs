using System.Text.Json;

namespace StreamSpace.Contracts.Api;

/// <summary>An agent as admins see it. <see cref="Status"/> is derived from the last heartbeat, so it is never stale.</summary>
public sealed record AgentResponse(
    string Id,
    string Status,
    string? Platform,
    string? Region,
    string? Version,
    int? ProtocolVersion,
    JsonElement Capacity,
    int ActiveSessions,
    bool Draining,
    bool Revoked,
    DateTimeOffset? LastHeartbeat,
    int HeartbeatIntervalSeconds,
    int? ClockSkewMs,
    DateTimeOffset? ConnectedAt,
    DateTimeOffset CreatedAt);

public sealed record CreateAgentRequest(string Id);

/// <summary>The new agent's key, shown once: only its hash is kept.</summary>
public sealed record CreateAgentResponse(string Id, string Key);
