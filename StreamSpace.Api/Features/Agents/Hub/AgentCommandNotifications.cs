using Npgsql;
using StreamSpace.Api.Features.Agents.Commands;
using StreamSpace.Api.Features.Replicas;
using StreamSpace.Api.Infrastructure.Database;

namespace StreamSpace.Api.Features.Agents.Hub;

/// <summary>A command for an agent committed on some replica: this one sends it if it holds the agent.</summary>
public sealed class AgentCommandNotifications(AgentHub hub, ReplicaIdentity identity, ILogger<AgentCommandNotifications> logger) : IDatabaseNotificationHandler
{
    public string Channel => AgentCommandQueue.NotifyChannel;

    public void OnNotification(string payload)
    {
        var (agentId, origin) = payload.Split(' ') is [var id, var replica] && Guid.TryParse(replica, out var from) ? (id, from) : (payload, Guid.Empty);
        if (origin != identity.Id && hub.IsConnected(agentId))
        {
            _ = DeliverAsync(agentId);
        }
    }

    // Off the listening connection: delivery queries and sends.
    private async Task DeliverAsync(string agentId)
    {
        try
        {
            await Task.Yield();
            await hub.DeliverCommandsAsync(agentId, CancellationToken.None);
        }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException or ObjectDisposedException or TimeoutException)
        {
            logger.LogWarning("Could not send agent {AgentId}'s new commands now ({Reason}); the sweep sends them", agentId, e.Message);
        }
    }
}
