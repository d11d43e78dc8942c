using Npgsql;
using StreamSpace.Api.Features.Agents.Commands;
using StreamSpace.Api.Features.Replicas;
using StreamSpace.Api.Features.Sessions;
using StreamSpace.Contracts;

namespace StreamSpace.Api.Features.Agents.Hub;

/// <summary>
/// The agents as the Sessions feature reaches them: commands through the queue (and its NOTIFY, which reaches the
/// replica holding the agent), messages through this replica's hub or, for an agent held elsewhere, through the relay.
/// </summary>
public sealed class SessionAgents(AgentHub hub, AgentStore store, AgentCommandQueue commands, IReplicaDirectory replicas, ReplicaIdentity identity,
    NpgsqlDataSource dataSource, ILogger<SessionAgents> logger) : ISessionAgents
{
    public Task EnqueueAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string agentId, string sessionId,
        string commandType, SessionCommandPayload payload, CancellationToken cancellationToken) =>
        AgentCommandQueue.EnqueueAsync(connection, transaction, agentId, sessionId, commandType, payload, cancellationToken);

    /// <summary>
    /// Sends the agent its new commands: here if this replica holds it, and through the NOTIFY wherever it is held
    /// (also when a connection here is stale and the agent is current elsewhere).
    /// </summary>
    public async Task DeliverAsync(string agentId)
    {
        try
        {
            await hub.DeliverCommandsAsync(agentId, CancellationToken.None);
        }
        catch (Exception e)
        {
            logger.LogWarning("Agent {AgentId}'s new commands could not be sent from here now ({Reason})", agentId, e.Message);
        }

        try
        {
            await commands.NotifyAsync(agentId, identity.Id, CancellationToken.None);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            logger.LogWarning("Could not notify the replicas of agent {AgentId}'s new commands ({Reason}); the sweep sends them", agentId, e.Message);
        }
    }

    public Task<bool> OpenStreamAsync(string agentId, StreamOpenMessage open, CancellationToken cancellationToken) =>
        SendAsync(agentId, open, cancellationToken);

    public async Task<bool> SendAsync(string agentId, AgentMessage message, CancellationToken cancellationToken)
    {
        // The database says which connection is the agent's current one: a connection here that is not (half-open,
        // its replacement's notice late or lost) would swallow the open, so it goes to the current holder instead.
        if (await store.HolderAsync(agentId, cancellationToken) is not { } holder)
        {
            return false;
        }

        if (holder.ReplicaId == identity.Id)
        {
            if (hub.Find(agentId) is not { } connection || connection.Id != holder.ConnectionId)
            {
                return false;
            }

            await connection.Socket.SendAsync(message, cancellationToken);
            return true;
        }

        if (!await replicas.IsAliveAsync(holder.ReplicaId, cancellationToken))
        {
            // Its replica died before the agent said hello elsewhere.
            return false;
        }

        await AgentRelay.SendAsync(dataSource, holder.ReplicaId, agentId, holder.ConnectionId, message, cancellationToken);
        return true;
    }

    public Task<AgentLink?> LinkAsync(string agentId, CancellationToken cancellationToken) => store.FindLinkAsync(agentId, cancellationToken);

    public AgentSocket? Socket(string agentId) => hub.Find(agentId)?.Socket;
}
