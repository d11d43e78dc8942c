using Dapper;
using Npgsql;
using StreamSpace.Api.Features.Audit;
using StreamSpace.Api.Features.Sessions;
using StreamSpace.Settings;

namespace StreamSpace.Api.Features.Recordings;

/// <summary>
/// Deletes recordings by age (<c>RECORDING_RETENTION</c>, counted from their end) and by total size
/// (<c>RECORDING_MAX_TOTAL_BYTES</c>: the oldest finished ones go until the rest fit), every minute. One replica sweeps
/// at a time: each sweep runs under a transaction-scoped advisory lock, and a replica that finds it taken skips its turn.
/// A recording still running is never deleted by retention; it counts towards the total all the same.
/// </summary>
public sealed class RecordingRetention(NpgsqlDataSource dataSource, ApiSettings settings, RecordingDeletes deletes, ISessionAgents agents, TimeProvider time,
    ILogger<RecordingRetention> logger) : BackgroundService
{
    public static readonly TimeSpan Interval = TimeSpan.FromMinutes(1);

    /// <summary>The advisory lock that lets one replica sweep at a time (any constant no other lock uses).</summary>
    private const long SweepLockKey = 0x5354_5245_4331; // "STREC1"

    /// <summary>The audit's actor for retention's deletions.</summary>
    public static readonly Actor Actor = new(null, "retention");

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Interval, time);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                await SweepAsync(stoppingToken);
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException)
            {
                logger.LogWarning("Recording retention could not run now ({Reason}); it tries again in {Interval}", e.Message, Interval);
            }
        }
    }

    /// <summary>One sweep; returns how many recordings it deleted (0 when another replica is sweeping).</summary>
    public async Task<int> SweepAsync(CancellationToken cancellationToken)
    {
        IReadOnlyList<DeletedRecording> deleted;
        await using (var connection = await dataSource.OpenConnectionAsync(cancellationToken))
        await using (var transaction = await connection.BeginTransactionAsync(cancellationToken))
        {
            if (!await connection.ExecuteScalarAsync<bool>(new CommandDefinition("SELECT pg_try_advisory_xact_lock(@SweepLockKey)",
                new { SweepLockKey }, transaction, cancellationToken: cancellationToken)))
            {
                return 0;
            }

            var aged = await AgedAsync(connection, transaction, cancellationToken);
            var byAge = await RecordingCatalog.MarkDeletedAsync(connection, transaction, aged, Actor,
                $"older than RECORDING_RETENTION ({Duration.Format(settings.RecordingRetention)})", cancellationToken);
            var oversize = await OversizeAsync(connection, transaction, cancellationToken);
            var bySize = await RecordingCatalog.MarkDeletedAsync(connection, transaction, oversize, Actor,
                $"the recordings' total exceeded RECORDING_MAX_TOTAL_BYTES ({settings.RecordingMaxTotalBytes} bytes); the oldest go first", cancellationToken);
            await connection.ExecuteAsync(new CommandDefinition(
                "DELETE FROM recordings WHERE delete_sent_at < now() - make_interval(secs => @seconds)",
                new { seconds = RecordingCatalog.TombstoneLifetime.TotalSeconds }, transaction, cancellationToken: cancellationToken));
            await transaction.CommitAsync(cancellationToken);
            deleted = [.. byAge, .. bySize];
        }

        if (deleted.Count > 0)
        {
            logger.LogInformation("Recording retention deleted {Count} recordings", deleted.Count);
        }

        foreach (var agentId in deleted.Select(d => d.AgentId).Distinct())
        {
            await deletes.DeliverAsync(agentId, (message, ct) => agents.SendAsync(agentId, message, ct), cancellationToken);
        }

        return deleted.Count;
    }

    private async Task<IReadOnlyList<Guid>> AgedAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, CancellationToken cancellationToken) =>
        [.. await connection.QueryAsync<Guid>(new CommandDefinition(
            """
            SELECT id FROM recordings
            WHERE deleted_at IS NULL AND ended_at IS NOT NULL AND ended_at < now() - make_interval(secs => @seconds)
            """, new { seconds = settings.RecordingRetention.TotalSeconds }, transaction, cancellationToken: cancellationToken))];

    /// <summary>The oldest finished recordings whose deletion brings the total within the limit (or as near as finished ones can).</summary>
    private async Task<IReadOnlyList<Guid>> OversizeAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, CancellationToken cancellationToken)
    {
        var (total, _) = await RecordingCatalog.TotalAsync(connection, transaction, cancellationToken);
        if (total <= settings.RecordingMaxTotalBytes)
        {
            return [];
        }

        var oldestFirst = await connection.QueryAsync<(Guid Id, long Bytes)>(new CommandDefinition(
            "SELECT id, bytes FROM recordings WHERE deleted_at IS NULL AND ended_at IS NOT NULL ORDER BY started_at, id",
            transaction: transaction, cancellationToken: cancellationToken));
        var chosen = new List<Guid>();
        foreach (var (id, bytes) in oldestFirst)
        {
            if (total <= settings.RecordingMaxTotalBytes)
            {
                break;
            }

            chosen.Add(id);
            total -= bytes;
        }

        return chosen;
    }
}
