using Dapper;
using Npgsql;
using StreamSpace.Api.Infrastructure.Metrics;
using StreamSpace.Contracts;

namespace StreamSpace.Api.Features.Sessions;

/// <summary>The sessions placed on agents in the <c>sessions</c> table; reports are applied through <see cref="SessionStateWriter"/>.</summary>
public sealed class PlacedSessions(NpgsqlDataSource dataSource, ApiMetrics metrics, ILogger<PlacedSessions> logger) : IPlacedSessions
{
    public async Task<IReadOnlyDictionary<string, int>> ActiveCountsAsync(string? agentId, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        var counts = await connection.QueryAsync<(string AgentId, long Count)>(new CommandDefinition(
            """
            SELECT agent_id, count(*) FROM sessions
            WHERE agent_id IS NOT NULL AND (@agentId::text IS NULL OR agent_id = @agentId::text) AND state = ANY(@Active)
            GROUP BY agent_id
            """, new { agentId, Active = SessionStateMachine.ActiveNames }, cancellationToken: cancellationToken));
        return counts.ToDictionary(c => c.AgentId, c => (int)c.Count);
    }

    public async Task ApplyAsync(string agentId, IReadOnlyList<ReportedSession> sessions, CancellationToken cancellationToken)
    {
        if (sessions.Count == 0)
        {
            return;
        }

        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        foreach (var session in sessions)
        {
            await SessionStateWriter.ApplyAsync(connection, transaction, agentId, session, metrics, cancellationToken);
        }

        await transaction.CommitAsync(cancellationToken);
    }

    public Task<bool> ApplyAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string agentId, ReportedSession session,
        CancellationToken cancellationToken) =>
        SessionStateWriter.ApplyAsync(connection, transaction, agentId, session, metrics, cancellationToken);

    public async Task<IReadOnlyList<string>> FailLostAsync(string agentId, IReadOnlyList<ReportedSession> reported, string reason,
        CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        var lost = (await connection.QueryAsync<string>(new CommandDefinition(
            "SELECT id FROM sessions WHERE agent_id = @agentId AND state IN (@Running, @Hibernated) AND NOT (id = ANY(@reported))",
            new { agentId, Running = SessionState.Running.ToName(), Hibernated = SessionState.Hibernated.ToName(), reported = reported.Select(s => s.SessionId).ToArray() }, transaction, cancellationToken: cancellationToken))).ToList();
        foreach (var sessionId in lost)
        {
            await SessionStateWriter.ApplyAsync(connection, transaction, agentId, new ReportedSession(sessionId, SessionState.Failed, reason), metrics, cancellationToken);
        }

        await transaction.CommitAsync(cancellationToken);
        return lost;
    }

    public async Task<IReadOnlyList<string>> UnownedAsync(string agentId, IReadOnlyList<ReportedSession> reported, CancellationToken cancellationToken)
    {
        // What the agent itself reports as over needs no stopping.
        var live = reported.Where(s => s.State is not (SessionState.Stopped or SessionState.Failed)).Select(s => s.SessionId).ToArray();
        if (live.Length == 0)
        {
            return [];
        }

        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        var owned = await connection.QueryAsync<string>(new CommandDefinition(
            "SELECT id FROM sessions WHERE id = ANY(@live) AND agent_id = @agentId AND state = ANY(@Active)",
            new { agentId, live, Active = SessionStateMachine.ActiveNames }, cancellationToken: cancellationToken));
        var unowned = live.Except(owned).ToList();
        if (unowned.Count > 0)
        {
            logger.LogWarning("Agent {AgentId} runs {Count} sessions the control plane does not own ({Sessions}); it stops them after its grace period",
                agentId, unowned.Count, string.Join(", ", unowned));
        }

        return unowned;
    }
}
