using Npgsql;
using StreamSpace.Api.Features.Agents.Commands;

namespace StreamSpace.Api.Features.Agents.Hub;

/// <summary>
/// Every <see cref="Every"/>, sends the agents held here their commands pending for more than <see cref="Overdue"/>:
/// NOTIFY is best-effort (lost while a listening connection re-opens), so it must not be the only path. A lost
/// notification therefore delays a command by at most Every + Overdue, 3 s; the query, on the open-commands index, runs
/// only while this replica holds agents.
/// </summary>
public sealed class CommandSweep(AgentHub hub, AgentCommandQueue commands, ILogger<CommandSweep> logger) : BackgroundService
{
    public static readonly TimeSpan Every = TimeSpan.FromSeconds(1);
    public static readonly TimeSpan Overdue = TimeSpan.FromSeconds(2);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Every);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                var held = hub.Connections.Select(c => c.AgentId).ToList();
                foreach (var agentId in await commands.AgentsWithOverdueCommandsAsync(held, Overdue, stoppingToken))
                {
                    logger.LogInformation("Sending agent {AgentId} commands whose notification was missed", agentId);
                    await hub.DeliverCommandsAsync(agentId, stoppingToken);
                }
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException && !stoppingToken.IsCancellationRequested)
            {
                logger.LogWarning("The command sweep failed ({Reason}); it runs again in {Seconds}s", e.Message, Every.TotalSeconds);
            }
        }
    }
}
