namespace StreamSpace.Api.Features.Agents.Commands;

/// <summary>Fails commands that got no answer within COMMAND_TIMEOUT, so none waits forever or vanishes silently.</summary>
public sealed class CommandTimeoutMonitor(AgentCommandQueue commands, ApiSettings settings, ILogger<CommandTimeoutMonitor> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var period = TimeSpan.FromTicks(Math.Clamp(settings.CommandTimeout.Ticks / 4, TimeSpan.FromMilliseconds(250).Ticks, TimeSpan.FromSeconds(5).Ticks));
        using var timer = new PeriodicTimer(period);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                await commands.FailExpiredAsync(stoppingToken);
            }
            catch (Npgsql.NpgsqlException e)
            {
                logger.LogWarning("Could not check for expired agent commands: {Reason}", e.Message);
            }
        }
    }
}
