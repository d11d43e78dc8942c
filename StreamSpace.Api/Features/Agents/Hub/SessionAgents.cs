using Npgsql;
using StreamSpace.Api.Features.Agents.Commands;
using StreamSpace.Api.Features.Sessions;
using StreamSpace.Contracts;

namespace StreamSpace.Api.Features.Agents.Hub;

/// <summary>The agents as the Sessions feature reaches them: commands through the queue, sockets from this instance's hub.</summary>
public sealed class SessionAgents(AgentHub hub) : ISessionAgents
{
    public Task EnqueueAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string agentId, string sessionId,
        string commandType, SessionCommandPayload payload, CancellationToken cancellationToken) =>
        AgentCommandQueue.EnqueueAsync(connection, transaction, agentId, sessionId, commandType, payload, cancellationToken);

    public Task DeliverAsync(string agentId, CancellationToken cancellationToken) => hub.DeliverCommandsAsync(agentId, cancellationToken);

    public AgentSocket? Socket(string agentId) => hub.Find(agentId)?.Socket;
}
