using StreamSpace.Contracts;

namespace StreamSpace.Api.Features.Agents.Hub;

/// <summary>
/// Closes connections of agents that stopped sending heartbeats, so a half-open socket cannot keep an agent
/// "online". Their status also derives from last_heartbeat, so it is right even while this API is down.
/// </summary>
public sealed class AgentLivenessMonitor(AgentHub hub, ApiSettings settings, ILogger<AgentLivenessMonitor> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(500));
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            foreach (var connection in hub.Connections)
            {
                var allowed = connection.HeartbeatInterval * settings.AgentMissedHeartbeats;
                if (connection.Socket.SinceLastReceived > allowed)
                {
                    logger.LogWarning("Agent {AgentId} missed {Missed} heartbeats ({Silence:0}s without a frame, interval {Interval}s); marking it offline",
                        connection.AgentId, settings.AgentMissedHeartbeats, connection.Socket.SinceLastReceived.TotalSeconds, connection.HeartbeatInterval.TotalSeconds);
                    await hub.DisconnectAsync(connection, AgentCloseCodes.HeartbeatsMissed,
                        $"no heartbeat for {connection.Socket.SinceLastReceived.TotalSeconds:0}s");
                }
            }
        }
    }
}
