using Dapper;
using Npgsql;

namespace StreamSpace.Api.Infrastructure;

/// <summary>
/// Failure limits in <c>failure_windows</c>, so they hold across every replica: 10 wrong passwords spread over two
/// replicas lock both. Each call is one statement (an upsert that starts a new window once the last one ended), and
/// PostgreSQL's clock alone decides windows. Every attempt is counted as it is reserved; it is refused when the count
/// passes the limit, and the attempt that first passes it is the lockout's first refusal (its one audit row).
/// </summary>
public sealed class PostgresFailureWindows(NpgsqlDataSource dataSource) : IFailureWindows
{
    private readonly OncePer sweep = new(TimeSpan.FromMinutes(1));

    private sealed record Counted(int Failures, double Seconds);

    public async Task<FailureVerdict> ReserveAsync(FailureLimit limit, string subject, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        var counted = await connection.QuerySingleAsync<Counted>(new CommandDefinition(
            $"""
            INSERT INTO failure_windows AS w (limit_name, subject, window_ends, failures)
            VALUES (@Name, @subject, now() + make_interval(secs => @seconds), 1)
            ON CONFLICT (limit_name, subject) DO UPDATE SET
                window_ends = CASE WHEN w.window_ends <= now() THEN excluded.window_ends ELSE w.window_ends END,
                failures = CASE WHEN w.window_ends <= now() THEN 1 ELSE w.failures + 1 END
            RETURNING failures, extract(epoch FROM window_ends - now())::float8 AS seconds;
            {SweepSql()}
            """, new { limit.Name, subject, seconds = limit.Window.TotalSeconds }, cancellationToken: cancellationToken));
        return counted.Failures > limit.Failures
            ? new FailureVerdict(true, TimeSpan.FromSeconds(Math.Max(1, counted.Seconds)), counted.Failures == limit.Failures + 1)
            : default;
    }

    public async Task RefundAsync(FailureLimit limit, string subject, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition(
            """
            UPDATE failure_windows SET failures = failures - 1
            WHERE limit_name = @Name AND subject = @subject AND window_ends > now() AND failures > 0
            """, new { limit.Name, subject }, cancellationToken: cancellationToken));
    }

    /// <summary>About once a minute per replica, a reservation also deletes windows that ended a minute ago.</summary>
    private string SweepSql() => sweep.IsDue()
        ? "DELETE FROM failure_windows WHERE window_ends < now() - interval '1 minute';"
        : "";
}
