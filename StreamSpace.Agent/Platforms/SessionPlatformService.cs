namespace StreamSpace.Agent.Platforms;

/// <summary>
/// Starts the platform's watches and timers as the agent starts, before the control plane connection (registered after
/// it) asks the platform for its sessions; nothing of that runs in the platform's constructor.
/// </summary>
public sealed class SessionPlatformService(ISessionPlatform platform) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => platform.StartMonitoringAsync(cancellationToken);

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
