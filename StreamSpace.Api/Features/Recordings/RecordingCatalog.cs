using Dapper;
using Npgsql;
using StreamSpace.Api.Features.Audit;
using StreamSpace.Contracts;
using StreamSpace.Contracts.Api;

namespace StreamSpace.Api.Features.Recordings;

/// <summary>A recording marked deleted: which agent must delete its file.</summary>
public sealed record DeletedRecording(Guid Id, string AgentId);

/// <summary>
/// The <c>recordings</c> table, which this feature alone reads and writes. A deleted recording keeps its row (deleted_at)
/// until its agent has been told, and a while after (<see cref="TombstoneLifetime"/>).
/// </summary>
public sealed class RecordingCatalog(NpgsqlDataSource dataSource)
{
    /// <summary>How long a deleted recording's row outlives the delete sent to its agent, so late reports cannot revive it.</summary>
    public static readonly TimeSpan TombstoneLifetime = TimeSpan.FromDays(1);

    private const string Columns = """
        id, session_id, user_id, username, template, agent_id, started_at, ended_at, duration_ms, bytes, (ended_at IS NULL) AS recording
        """;

    private sealed class Row
    {
        public Guid Id { get; init; }
        public string SessionId { get; init; } = "";
        public Guid? UserId { get; init; }
        public string Username { get; init; } = "";
        public string Template { get; init; } = "";
        public string AgentId { get; init; } = "";
        public DateTime StartedAt { get; init; }
        public DateTime? EndedAt { get; init; }
        public long DurationMs { get; init; }
        public long Bytes { get; init; }
        public bool Recording { get; init; }

        public RecordingResponse ToView() => new(Id, SessionId, UserId, Username, Template, AgentId, Utc(StartedAt),
            EndedAt is { } ended ? Utc(ended) : null, DurationMs, Bytes, Recording);

        private static DateTimeOffset Utc(DateTime at) => new(DateTime.SpecifyKind(at, DateTimeKind.Utc));
    }

    /// <summary>
    /// Creates or updates the recording's row from its agent's report; a recording already deleted stays deleted, and
    /// a report never moves a recording to another session or agent. Reports may arrive out of order (a progress report
    /// queued before the final one, a resend after a reconnect): an ended recording stays ended, and its size and
    /// duration only grow.
    /// </summary>
    public async Task UpsertAsync(string agentId, RecordingMessage report, Guid userId, string username, string template, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition(
            """
            INSERT INTO recordings (id, session_id, user_id, username, template, agent_id, started_at, ended_at, duration_ms, bytes)
            -- A deleted user's session keeps its user_id, but the recording may name only a user who exists.
            VALUES (@RecordingId, @SessionId, (SELECT id FROM users WHERE id = @userId), @username, @template, @agentId, @StartedAt, @EndedAt, @DurationMs, @Bytes)
            ON CONFLICT (id) DO UPDATE SET ended_at = COALESCE(recordings.ended_at, EXCLUDED.ended_at),
                duration_ms = GREATEST(recordings.duration_ms, EXCLUDED.duration_ms), bytes = GREATEST(recordings.bytes, EXCLUDED.bytes), updated_at = now()
            WHERE recordings.deleted_at IS NULL AND recordings.agent_id = EXCLUDED.agent_id AND recordings.session_id = EXCLUDED.session_id
            """,
            new
            {
                report.RecordingId,
                report.SessionId,
                userId,
                username,
                template,
                agentId,
                StartedAt = report.StartedAt.UtcDateTime,
                EndedAt = report.EndedAt?.UtcDateTime,
                report.DurationMs,
                report.Bytes,
            }, cancellationToken: cancellationToken));
    }

    /// <summary>Ends the agent's running recordings not reported for <paramref name="silentFor"/>, at the end their last report implies; returns them.</summary>
    public async Task<IReadOnlyList<Guid>> EndSilentAsync(string agentId, TimeSpan silentFor, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return [.. await connection.QueryAsync<Guid>(new CommandDefinition(
            """
            UPDATE recordings SET ended_at = started_at + make_interval(secs => duration_ms / 1000.0), updated_at = now()
            WHERE agent_id = @agentId AND ended_at IS NULL AND deleted_at IS NULL AND updated_at < now() - make_interval(secs => @seconds)
            RETURNING id
            """, new { agentId, seconds = silentFor.TotalSeconds }, cancellationToken: cancellationToken))];
    }

    /// <summary>The recordings not deleted, newest first, of one session or one user's sessions when given.</summary>
    public async Task<IReadOnlyList<RecordingResponse>> ListAsync(string? sessionId, string? username, CancellationToken cancellationToken)
    {
        var filters = new List<string> { "deleted_at IS NULL" };
        if (sessionId is not null)
        {
            filters.Add("session_id = @sessionId");
        }

        if (username is not null)
        {
            filters.Add("lower(username) = lower(@username)");
        }

        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        var rows = await connection.QueryAsync<Row>(new CommandDefinition(
            $"SELECT {Columns} FROM recordings WHERE {string.Join(" AND ", filters)} ORDER BY started_at DESC, id LIMIT 1000",
            new { sessionId, username }, cancellationToken: cancellationToken));
        return [.. rows.Select(r => r.ToView())];
    }

    public async Task<RecordingResponse?> GetAsync(Guid id, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        var row = await connection.QuerySingleOrDefaultAsync<Row>(new CommandDefinition(
            $"SELECT {Columns} FROM recordings WHERE id = @id AND deleted_at IS NULL", new { id }, cancellationToken: cancellationToken));
        return row?.ToView();
    }

    /// <summary>
    /// Marks the recordings deleted, each audited as <c>recording.deleted</c> by <paramref name="actor"/> with the reason,
    /// in the caller's transaction; returns those that were not deleted already.
    /// </summary>
    public static async Task<IReadOnlyList<DeletedRecording>> MarkDeletedAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, IReadOnlyList<Guid> ids,
        Actor actor, string reason, CancellationToken cancellationToken)
    {
        var deleted = (await connection.QueryAsync<(Guid Id, string AgentId, string SessionId, string Username, long Bytes, long DurationMs)>(new CommandDefinition(
            """
            UPDATE recordings SET deleted_at = now(), updated_at = now() WHERE id = ANY(@ids) AND deleted_at IS NULL
            RETURNING id, agent_id, session_id, username, bytes, duration_ms
            """, new { ids = ids.ToArray() }, transaction, cancellationToken: cancellationToken))).ToList();
        foreach (var recording in deleted)
        {
            await connection.WriteAsync(actor, "recording.deleted", "recording", recording.Id.ToString("D"),
                new { by = actor.Name, reason, session = recording.SessionId, user = recording.Username, recording.Bytes, recording.DurationMs },
                transaction, cancellationToken);
        }

        return [.. deleted.Select(r => new DeletedRecording(r.Id, r.AgentId))];
    }

    /// <summary>Deletes one recording (audited); false when there is none, or it was deleted already.</summary>
    public async Task<DeletedRecording?> DeleteAsync(Guid id, Actor actor, string reason, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        var deleted = await MarkDeletedAsync(connection, transaction, [id], actor, reason, cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return deleted.SingleOrDefault();
    }

    /// <summary>
    /// The deleted recordings on the agent whose delete it has not been handed yet, or with <paramref name="includeSent"/>
    /// every tombstone of the agent: a delete handed to a connection may have been lost with it.
    /// </summary>
    public async Task<IReadOnlyList<Guid>> DeletesToSendAsync(string agentId, bool includeSent, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return [.. await connection.QueryAsync<Guid>(new CommandDefinition(
            "SELECT id FROM recordings WHERE agent_id = @agentId AND deleted_at IS NOT NULL AND (@includeSent OR delete_sent_at IS NULL) ORDER BY deleted_at",
            new { agentId, includeSent }, cancellationToken: cancellationToken))];
    }

    /// <summary>Notes the first hand-over of the delete: the tombstone's lifetime counts from it.</summary>
    public async Task MarkDeleteSentAsync(Guid id, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition(
            "UPDATE recordings SET delete_sent_at = COALESCE(delete_sent_at, now()) WHERE id = @id", new { id }, cancellationToken: cancellationToken));
    }

    /// <summary>The size of every recording not deleted (running ones included), and how many there are.</summary>
    public async Task<(long Bytes, int Count)> TotalAsync(CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return await TotalAsync(connection, null, cancellationToken);
    }

    public static async Task<(long Bytes, int Count)> TotalAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, CancellationToken cancellationToken)
    {
        var (bytes, count) = await connection.QuerySingleAsync<(long, long)>(new CommandDefinition(
            "SELECT coalesce(sum(bytes), 0)::bigint, count(*) FROM recordings WHERE deleted_at IS NULL", transaction: transaction, cancellationToken: cancellationToken));
        return (bytes, (int)count);
    }
}
