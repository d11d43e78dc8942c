using System.Net.WebSockets;
using StreamSpace.Contracts;

namespace StreamSpace.Api.Features.Agents.Hub;

/// <summary>One connected agent: who it is, what it authenticated with, and its socket.</summary>
/// <param name="keyHash">The hash of the key this connection authenticated with, checked again at hello and each heartbeat.</param>
public sealed class AgentConnection(string agentId, string keyHash, WebSocket socket, TimeProvider time)
{
    public string AgentId { get; } = agentId;

    /// <summary>Tells this connection from the agent's earlier and later ones, in the agents table too.</summary>
    public Guid Id { get; } = Guid.NewGuid();

    public string KeyHash { get; } = keyHash;

    public AgentSocket Socket { get; } = new(socket, time);

    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Set once this connection's hello is recorded as the agent's current connection. Until then another replica's
    /// notification of a hello must not close it: this connection's own hello is about to supersede that one.
    /// </summary>
    public bool Welcomed
    {
        get => Volatile.Read(ref welcomed);
        set => Volatile.Write(ref welcomed, value);
    }

    private bool welcomed;

    /// <summary>Serialises command delivery, so a reconnect's re-send and a new command's send do not race.</summary>
    public SemaphoreSlim DeliveryLock { get; } = new(1, 1);
}
