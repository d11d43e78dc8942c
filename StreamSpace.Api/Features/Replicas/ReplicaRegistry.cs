using System.Reflection;
using Dapper;
using Npgsql;

namespace StreamSpace.Api.Features.Replicas;

/// <summary>
/// This replica's row in <c>api_replicas</c>: written at start, refreshed every <see cref="RefreshEvery"/> (with the
/// data URL once the data listener has bound), deleted at a clean stop. A replica is alive while seen within
/// <see cref="AliveFor"/>; a killed replica's row stays until any replica prunes it an hour later.
/// </summary>
public sealed class ReplicaRegistry(NpgsqlDataSource dataSource, ReplicaIdentity identity, ILogger<ReplicaRegistry> logger)
    : BackgroundService, IReplicaDirectory
{
    public static readonly TimeSpan RefreshEvery = TimeSpan.FromSeconds(5);
    public static readonly TimeSpan AliveFor = TimeSpan.FromSeconds(15);
    private static readonly TimeSpan KeptFor = TimeSpan.FromHours(1);

    private int removed;

    private static readonly string Version =
        typeof(ReplicaRegistry).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";

    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        // Before the first request: a replica that serves must be findable by the others.
        await RefreshAsync(cancellationToken);
        logger.LogInformation("Registered as API replica {ReplicaId}", identity.Id);
        await base.StartAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(RefreshEvery);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                await RefreshAsync(stoppingToken);
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException && !stoppingToken.IsCancellationRequested)
            {
                logger.LogWarning("Could not refresh this replica's row ({Reason}); trying again in {Seconds}s", e.Message, RefreshEvery.TotalSeconds);
            }
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        // A host can be stopped twice at once (WebApplication.RunAsync stops it when the lifetime ends, and so does
        // whoever ended it); the second stop may run while the first disposes the container.
        if (Interlocked.Exchange(ref removed, 1) == 1)
        {
            return;
        }

        try
        {
            await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
            await connection.ExecuteAsync(new CommandDefinition("DELETE FROM api_replicas WHERE id = @Id", new { identity.Id }, cancellationToken: cancellationToken));
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or OperationCanceledException or ObjectDisposedException)
        {
            // Its row ages out: 15 s from now nobody counts this replica alive.
            logger.LogInformation("Could not remove this replica's row at stop: {Reason}", e.Message);
        }
    }

    /// <summary>
    /// Records where agents dial this replica's data connections and writes it to this replica's row at once, so no
    /// other replica reads the row without it once this one serves (a forward hop needs it).
    /// </summary>
    public async Task PublishDataUrlAsync(string dataUrl, CancellationToken cancellationToken)
    {
        identity.SetDataUrl(dataUrl);
        await RefreshAsync(cancellationToken);
    }

    /// <summary>Marks this replica draining, so no other replica routes new work to it.</summary>
    public async Task MarkDrainingAsync(CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition("UPDATE api_replicas SET draining = true WHERE id = @Id", new { identity.Id }, cancellationToken: cancellationToken));
    }

    public async Task<ReplicaInfo?> FindAsync(Guid replicaId, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return await connection.QuerySingleOrDefaultAsync<ReplicaInfo>(new CommandDefinition(
            "SELECT id, data_url, seen_at > now() - make_interval(secs => @alive) AS alive, draining FROM api_replicas WHERE id = @replicaId",
            new { replicaId, alive = AliveFor.TotalSeconds }, cancellationToken: cancellationToken));
    }

    public async Task<bool> IsAliveAsync(Guid replicaId, CancellationToken cancellationToken) =>
        await FindAsync(replicaId, cancellationToken) is { Alive: true };

    public async Task<bool> OthersAliveAsync(CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return await connection.ExecuteScalarAsync<bool>(new CommandDefinition(
            "SELECT EXISTS (SELECT 1 FROM api_replicas WHERE id <> @Id AND NOT draining AND seen_at > now() - make_interval(secs => @alive))",
            new { identity.Id, alive = AliveFor.TotalSeconds }, cancellationToken: cancellationToken));
    }

    private async Task RefreshAsync(CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition(
            """
            INSERT INTO api_replicas (id, data_url, version) VALUES (@Id, @DataUrl, @Version)
            ON CONFLICT (id) DO UPDATE SET seen_at = now(), data_url = excluded.data_url;
            DELETE FROM api_replicas WHERE seen_at < now() - make_interval(secs => @kept);
            """,
            new { identity.Id, identity.DataUrl, Version, kept = KeptFor.TotalSeconds }, cancellationToken: cancellationToken));
    }
}
