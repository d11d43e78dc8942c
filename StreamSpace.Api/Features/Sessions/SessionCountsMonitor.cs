using System.Diagnostics.Metrics;
using Dapper;
using Npgsql;
using StreamSpace.Api.Infrastructure.Metrics;

namespace StreamSpace.Api.Features.Sessions;

/// <summary>
/// Counts the sessions by state and platform every 15 seconds for <c>streamspace_sessions</c>. A scrape reads the last
/// count, so scrapes cost the database nothing; a state and platform seen once keeps reporting (0 when none are left),
/// so a graph drops to zero instead of ending.
/// </summary>
public sealed class SessionCountsMonitor(NpgsqlDataSource dataSource, ApiMetrics metrics, TimeProvider time, ILogger<SessionCountsMonitor> logger)
    : BackgroundService
{
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(15);

    private readonly Dictionary<(string State, string Platform), long> counts = [];
    private IReadOnlyList<Measurement<long>> latest = [];

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        metrics.ObserveSessionCounts(() => Volatile.Read(ref latest));
        using var timer = new PeriodicTimer(Interval, time);
        do
        {
            try
            {
                await CountAsync(stoppingToken);
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException)
            {
                // The database is away (health reports it); the gauge keeps its last figures until it is back.
                logger.LogDebug("Could not count the sessions for the metrics: {Reason}", e.Message);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    private async Task CountAsync(CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        var rows = await connection.QueryAsync<(string State, string Platform, long Count)>(new CommandDefinition(
            "SELECT state, coalesce(platform, 'unknown'), count(*) FROM sessions GROUP BY 1, 2", cancellationToken: cancellationToken));
        foreach (var key in counts.Keys)
        {
            counts[key] = 0;
        }

        foreach (var (state, platform, count) in rows)
        {
            counts[(state, platform)] = count;
        }

        Volatile.Write(ref latest, [.. counts.Select(c => new Measurement<long>(c.Value,
            new KeyValuePair<string, object?>("state", c.Key.State), new KeyValuePair<string, object?>("platform", c.Key.Platform)))]);
    }
}
