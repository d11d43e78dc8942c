using Microsoft.Extensions.Diagnostics.HealthChecks;
using Npgsql;

namespace StreamSpace.Api.Features.Replicas;

/// <summary>
/// This replica's graceful stop, as features see it. <see cref="Draining"/> is cancelled at SIGTERM: refuse new work
/// (agents, viewers) from then on. <see cref="Closing"/> is cancelled once the balancers had
/// <c>SHUTDOWN_DRAIN_DELAY</c> to notice and the agents have moved: close what is still open (viewers with 4307).
/// </summary>
public interface IReplicaDrain
{
    bool IsDraining { get; }

    CancellationToken Draining { get; }

    CancellationToken Closing { get; }
}

/// <summary>A feature's part of the drain, run after the balancers had time to notice (e.g. the hub moves its agents).</summary>
public interface IReplicaDrainStep
{
    Task DrainAsync(CancellationToken cancellationToken);
}

/// <summary>
/// Runs the drain when the host begins to stop, before Kestrel stops serving: mark draining (so <c>/health</c> answers
/// 503 and the balancer stops sending new work), wait <c>SHUTDOWN_DRAIN_DELAY</c>, run every <see cref="IReplicaDrainStep"/>,
/// then signal <see cref="Closing"/>. Hosted services' StoppingAsync all run before any StopAsync, so the hub, the
/// listening connection and Kestrel still work throughout.
/// </summary>
public sealed class ReplicaDrain(ApiSettings settings, ReplicaRegistry registry, IServiceProvider services, ILogger<ReplicaDrain> logger)
    : IReplicaDrain, IHostedLifecycleService, IHealthCheck
{
    private readonly CancellationTokenSource draining = new();
    private readonly CancellationTokenSource closing = new();

    public bool IsDraining => draining.IsCancellationRequested;

    public CancellationToken Draining => draining.Token;

    public CancellationToken Closing => closing.Token;

    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        logger.LogInformation("Stopping: draining for {Delay}s so balancers move new work elsewhere, then moving agents", settings.ShutdownDrainDelay.TotalSeconds);
        await draining.CancelAsync();
        try
        {
            await registry.MarkDrainingAsync(cancellationToken);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            // /health already answers 503; the row's age marks this replica dead soon after it exits anyway.
            logger.LogWarning("Could not mark this replica draining in the database: {Reason}", e.Message);
        }

        if (!await OthersAliveAsync(cancellationToken))
        {
            // The only replica (development, a single-replica install): nowhere to move anything, so no reason to wait.
            logger.LogInformation("No other replica is alive; stopping without a drain");
            await closing.CancelAsync();
            return;
        }

        await Task.Delay(settings.ShutdownDrainDelay, cancellationToken);
        // Resolved now, not at construction: the steps' features (the hub) depend on IReplicaDrain themselves.
        foreach (var step in services.GetServices<IReplicaDrainStep>())
        {
            try
            {
                await step.DrainAsync(cancellationToken);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // One step failing must not keep the others (and the process's exit) waiting.
                logger.LogWarning("A drain step ({Step}) failed: {Reason}", step.GetType().Name, e.Message);
            }
        }

        await closing.CancelAsync();
    }

    private async Task<bool> OthersAliveAsync(CancellationToken cancellationToken)
    {
        try
        {
            return await registry.OthersAliveAsync(cancellationToken);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            // Without the database, assume the others run: draining costs a few seconds, a skipped drain drops agents.
            logger.LogWarning("Could not tell whether other replicas run ({Reason}); draining anyway", e.Message);
            return true;
        }
    }

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(IsDraining ? HealthCheckResult.Unhealthy("draining: this replica is stopping") : HealthCheckResult.Healthy());

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
