using Dapper;
using Npgsql;
using StreamSpace.Api.Features.Audit;
using StreamSpace.Api.Features.Sessions.List;
using StreamSpace.Contracts;

namespace StreamSpace.Api.Features.Sessions;

/// <summary>The recording side of the <c>sessions</c> table.</summary>
public sealed class RecordedSessions(NpgsqlDataSource dataSource, SessionListCache lists) : IRecordedSessions
{
    public async Task<RecordedSession?> FindAsync(string sessionId, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        var row = await connection.QuerySingleOrDefaultAsync<(string Id, Guid UserId, string? Username, string Template, string? AgentId, string State, bool Record)?>(
            new CommandDefinition(
                """
                SELECT s.id, s.user_id, u.username, s.template, s.agent_id, s.state, s.record
                FROM sessions s LEFT JOIN users u ON u.id = s.user_id WHERE s.id = @sessionId
                """, new { sessionId }, cancellationToken: cancellationToken));
        return row is { } found
            ? new RecordedSession(found.Id, found.UserId, found.Username, found.Template, found.AgentId, SessionNames.ParseState(found.State), found.Record)
            : null;
    }

    public async Task<bool> MarkRecordedAsync(string sessionId, Actor actor, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        var changed = await connection.ExecuteAsync(new CommandDefinition(
            "UPDATE sessions SET record = true, updated_at = now() WHERE id = @sessionId", new { sessionId }, transaction, cancellationToken: cancellationToken));
        if (changed == 0)
        {
            return false;
        }

        await connection.WriteAsync(actor, "session.recorded", "session", sessionId, new { by = actor.Name }, transaction, cancellationToken);
        // The owner's viewer and sessions list show the badge as soon as this commits.
        await SessionStateWriter.NotifyAsync(connection, transaction, sessionId, cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        lists.Invalidate();
        return true;
    }

    public async Task<IReadOnlyList<string>> RecordedOnAsync(string agentId, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return [.. await connection.QueryAsync<string>(new CommandDefinition(
            "SELECT id FROM sessions WHERE agent_id = @agentId AND record AND state = @Running ORDER BY id",
            new { agentId, Running = SessionState.Running.ToName() }, cancellationToken: cancellationToken))];
    }
}
