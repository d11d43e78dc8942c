using Npgsql;
using StreamSpace.Contracts;

namespace StreamSpace.Api.Features.Sessions;

/// <summary>An agent's live control connection: <see cref="ConnectionId"/> tells it from the agent's earlier and later ones.</summary>
public sealed record AgentLink(Guid ConnectionId, int ProtocolVersion);

/// <summary>
/// What sessions need of the agents that run them: their commands, and the socket their VNC streams run through.
/// The Sessions feature defines it; the Agents feature, which owns the commands' table and the agents' sockets,
/// implements it.
/// </summary>
public interface ISessionAgents
{
    /// <summary>Writes a command for the agent in the caller's transaction. Nothing is sent before <see cref="DeliverAsync"/>.</summary>
    Task EnqueueAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string agentId, string sessionId,
        string commandType, SessionCommandPayload payload, CancellationToken cancellationToken);

    /// <summary>
    /// Sends the agent its committed commands now, wherever it is connected: from here, or (NOTIFY) from the replica
    /// holding it; an agent connected nowhere gets them at its next connect.
    /// It comes after the caller's commit, so it takes no cancellation and never throws: a client that goes away
    /// mid-send must not leave a command marked sent but never sent, and a failed send must not turn a change that
    /// was made into an error. What is not sent goes when the agent next connects.
    /// </summary>
    Task DeliverAsync(string agentId);

    /// <summary>
    /// Asks the agent to open a viewer's data connection, through whichever replica holds the agent's control socket.
    /// False when no live replica holds it (the agent is offline, or its replica died before the agent moved).
    /// </summary>
    Task<bool> OpenStreamAsync(string agentId, StreamOpenMessage open, CancellationToken cancellationToken);

    /// <summary>
    /// Sends the agent a message on its current control connection (e.g. <see cref="RecordSessionMessage"/>), through
    /// whichever replica holds it; false when no live replica holds it. Sent at most once: nothing is queued.
    /// </summary>
    Task<bool> SendAsync(string agentId, AgentMessage message, CancellationToken cancellationToken);

    /// <summary>
    /// The agent's live control connection, on whichever replica holds it: its id (which changes when the agent
    /// reconnects) and the protocol version it said hello with. Null while the agent is offline.
    /// </summary>
    Task<AgentLink?> LinkAsync(string agentId, CancellationToken cancellationToken);

    /// <summary>The agent's socket, if the agent is connected here.</summary>
    AgentSocket? Socket(string agentId);
}
