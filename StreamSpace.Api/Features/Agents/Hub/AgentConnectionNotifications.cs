using StreamSpace.Api.Infrastructure.Database;

namespace StreamSpace.Api.Features.Agents.Hub;

/// <summary>Another replica accepted a hello of an agent: an older connection of it here closes (4001).</summary>
public sealed class AgentConnectionNotifications(AgentHub hub, ILogger<AgentConnectionNotifications> logger) : IDatabaseNotificationHandler
{
    public string Channel => AgentHub.ConnectionsChannel;

    public void OnNotification(string payload)
    {
        if (payload.Split(' ') is [var agentId, var id] && Guid.TryParse(id, out var connectionId) && hub.Find(agentId) is { } held
            && held.Id != connectionId)
        {
            _ = CloseAsync(agentId, connectionId);
        }
    }

    private async Task CloseAsync(string agentId, Guid connectionId)
    {
        try
        {
            await Task.Yield();
            await hub.CloseIfReplacedAsync(agentId, connectionId);
        }
        catch (Exception e) when (e is InvalidOperationException or ObjectDisposedException)
        {
            logger.LogInformation("Closing agent {AgentId}'s replaced connection: {Reason}", agentId, e.Message);
        }
    }
}
