using Npgsql;
using StreamSpace.Api.Features.Agents.Commands;
using StreamSpace.Api.Features.Sessions;
using StreamSpace.Contracts;

namespace StreamSpace.Api.Features.Agents.Hub;

/// <summary>The agents as the Sessions feature reaches them: commands through the queue, sockets from this instance's hub.</summary>
public sealed class SessionAgents(AgentHub hub, AgentStore store, ILogger<SessionAgents> logger) : ISessionAgents
{
    public Task EnqueueAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string agentId, string sessionId,
        string commandType, SessionCommandPayload payload, CancellationToken cancellationToken) =>
        AgentCommandQueue.EnqueueAsync(connection, transaction, agentId, sessionId, commandType, payload, cancellationToken);

    public async Task DeliverAsync(string agentId)
    {
        try
        {
            await hub.DeliverCommandsAsync(agentId, CancellationToken.None);
        }
        catch (Exception e)
        {
            logger.LogWarning("Agent {AgentId}'s new commands could not be sent now ({Reason}); they go when it next connects", agentId, e.Message);
        }
    }

    public async Task<bool> OpenStreamAsync(string agentId, StreamOpenMessage open, CancellationToken cancellationToken)
    {
        // This replica only, for now; the relay to the replica that holds the agent comes with issue 16.
        if (hub.Find(agentId) is not { } connection)
            return false;
        await connection.Socket.SendAsync(open, cancellationToken);
        return true;
    }

    public Task<AgentLink?> LinkAsync(string agentId, CancellationToken cancellationToken) => store.FindLinkAsync(agentId, cancellationToken);

    public AgentSocket? Socket(string agentId) => hub.Find(agentId)?.Socket;
}
