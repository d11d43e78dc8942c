using Dapper;
using Npgsql;
using StreamSpace.Contracts;

namespace StreamSpace.Api.Features.Sessions;

/// <summary>
/// Owns <c>session_state_history</c>: each state a session entered and when, written with every state change
/// (<see cref="SessionStateWriter"/>), and the session-hours read from it (<see cref="ISessionUsage"/>).
/// </summary>
public static class SessionStateHistory
{
    /// <summary>Records that the session entered <paramref name="state"/> at <paramref name="at"/> (null: the database's now, as the session's own timestamps).</summary>
    public static Task RecordAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, string sessionId, SessionState state,
        DateTimeOffset? at, CancellationToken cancellationToken) =>
        connection.ExecuteAsync(new CommandDefinition(
            "INSERT INTO session_state_history (session_id, state, at) VALUES (@sessionId, @state, coalesce(@at, now()))",
            new { sessionId, state = state.ToName(), at }, transaction, cancellationToken: cancellationToken));
}

/// <summary>How usage is grouped.</summary>
public enum UsageGrouping
{
    /// <summary>Keyed by username (a deleted user's by its id).</summary>
    User,

    /// <summary>Keyed by the user's id, for features that group users further (groups).</summary>
    UserId,

    Template,
}

/// <summary>What the usage report needs of sessions: time spent running, per user or per template.</summary>
public interface ISessionUsage
{
    /// <summary>
    /// Hours in the running state within [<paramref name="from"/>, <paramref name="to"/>) and the sessions that ran in it,
    /// by key, most hours first. A session still running counts up to <paramref name="now"/>.
    /// </summary>
    Task<IReadOnlyList<UsageRow>> RunningHoursAsync(DateTimeOffset from, DateTimeOffset to, DateTimeOffset now, UsageGrouping groupBy,
        CancellationToken cancellationToken);
}

public sealed class SessionUsage(NpgsqlDataSource dataSource) : ISessionUsage
{
    public async Task<IReadOnlyList<UsageRow>> RunningHoursAsync(DateTimeOffset from, DateTimeOffset to, DateTimeOffset now, UsageGrouping groupBy,
        CancellationToken cancellationToken)
    {
        // Deleted users' sessions keep their user id (ids are never reused): they show under it.
        var key = groupBy switch
        {
            UsageGrouping.Template => "s.template",
            UsageGrouping.UserId => "s.user_id::text",
            _ => "coalesce(u.username, s.user_id::text)",
        };
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        var rows = await connection.QueryAsync<(string Key, double Seconds, long Sessions)>(new CommandDefinition(
            $"""
            WITH entered AS (
                SELECT session_id, state, at, lead(at) OVER (PARTITION BY session_id ORDER BY at, id) AS left_at
                FROM session_state_history
                WHERE session_id IN (SELECT session_id FROM session_state_history WHERE at < @to)
            ), running AS (
                SELECT session_id, greatest(at, @from) AS started, least(coalesce(left_at, @now), @to) AS ended
                FROM entered WHERE state = 'running'
            )
            SELECT {key} AS key, sum(extract(epoch FROM r.ended - r.started))::float8 AS seconds, count(DISTINCT r.session_id) AS sessions
            FROM running r
            JOIN sessions s ON s.id = r.session_id
            LEFT JOIN users u ON u.id = s.user_id
            WHERE r.ended > r.started
            GROUP BY 1
            ORDER BY 2 DESC, 1
            """, new { from, to, now }, cancellationToken: cancellationToken));
        return [.. rows.Select(r => new UsageRow(r.Key, r.Seconds / 3600, (int)r.Sessions))];
    }
}
