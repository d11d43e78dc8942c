using Microsoft.Extensions.Diagnostics.HealthChecks;
using Npgsql;

namespace StreamSpace.Api.Features.Replicas;

/// <summary>
/// This replica's graceful stop, as features see it: <see cref="IsDraining"/> from SIGTERM on, when new work (agents,
/// viewers) is refused. What is still open is closed by each feature's <see cref="IReplicaDrainStep"/>.
/// </summary>
public interface IReplicaDrain
{
    bool IsDraining { get; }
}

/// <summary>A feature's part of the drain, run after the balancers had time to notice (e.g. the hub moves its agents).</summary>
public interface IReplicaDrainStep
{
    /// <param name="othersAlive">
    /// Whether another replica can take over this one's work; when none can (a single-replica install), the step still
    /// closes what it holds, so the process stops at once instead of waiting out the host's shutdown timeout.
    /// </param>
    Task DrainAsync(bool othersAlive, CancellationToken cancellationToken);
}

/// <summary>
/// Runs the drain when the host begins to stop, before Kestrel stops serving: mark draining (so <c>/health</c> answers
/// 503 and the balancer stops sending new work), wait <c>SHUTDOWN_DRAIN_DELAY</c>, then run every
/// <see cref="IReplicaDrainStep"/> in the order they were registered (the hub moves its agents, then the viewers close).
/// Hosted services' StoppingAsync all run before any StopAsync, so the hub, the listening connection and Kestrel still
/// work throughout.
/// </summary>
public sealed class ReplicaDrain(ApiSettings settings, ReplicaRegistry registry, IServiceProvider services, ILogger<ReplicaDrain> logger)
    : IReplicaDrain, IHostedLifecycleService, IHealthCheck
{
    private volatile bool draining;
    private readonly Lock drainGate = new();
    private Task? drain;

    public bool IsDraining => draining;

    /// <summary>
    /// Drains once: a host can be stopped twice at once (WebApplication.RunAsync stops it when the lifetime ends, and so
    /// does whoever ended it), and the second stop waits for the first drain instead of running another after it.
    /// </summary>
    public Task StoppingAsync(CancellationToken cancellationToken)
    {
        lock (drainGate)
        {
            return drain ??= DrainAsync(cancellationToken);
        }
    }

    private async Task DrainAsync(CancellationToken cancellationToken)
    {
        logger.LogInformation("Stopping: refusing new agents and viewers");
        draining = true;
        try
        {
            await registry.MarkDrainingAsync(cancellationToken);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            // /health already answers 503; the row's age marks this replica dead soon after it exits anyway.
            logger.LogWarning("Could not mark this replica draining in the database: {Reason}", e.Message);
        }

        var othersAlive = await OthersAliveAsync(cancellationToken);
        if (othersAlive)
        {
            await Task.Delay(settings.ShutdownDrainDelay, cancellationToken);
            // Asked again: the others may have begun to stop meanwhile (a scale to zero), and an agent sent to a
            // draining replica is refused there.
            othersAlive = await OthersAliveAsync(cancellationToken);
        }
        else
        {
            // The only replica (development, a single-replica install): nowhere to move anything, so no reason to wait,
            // but what is open still closes now: left to Kestrel, it would hold the stop for the whole shutdown timeout.
            logger.LogInformation("No other replica is alive; closing agents and viewers without a drain");
        }

        // Resolved now, not at construction: the steps' features (the hub) depend on IReplicaDrain themselves.
        foreach (var step in services.GetServices<IReplicaDrainStep>())
        {
            try
            {
                await step.DrainAsync(othersAlive, cancellationToken);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // One step failing must not keep the others (and the process's exit) waiting.
                logger.LogWarning("A drain step ({Step}) failed: {Reason}", step.GetType().Name, e.Message);
            }
        }
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
