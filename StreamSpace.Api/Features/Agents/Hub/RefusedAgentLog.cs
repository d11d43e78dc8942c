using Dapper;
using Npgsql;

namespace StreamSpace.Api.Features.Agents.Hub;

/// <summary>
/// Agent connections the hub refused in the last hour, by agent id: how often, when last, and why (a revoked or wrong
/// key, a protocol mismatch), so the admin sees why an agent reads offline, whichever replica refused it. Kept in
/// <c>agent_refusals</c>, for registered agent ids only: ids an attacker makes up are not recorded, so they cannot grow
/// it (and the per-address limit stops a flood before it reaches here).
/// </summary>
public sealed class RefusedAgentLog(NpgsqlDataSource dataSource, ILogger<RefusedAgentLog> logger)
{
    public static readonly TimeSpan Kept = TimeSpan.FromHours(1);

    /// <summary>Records a refusal of a registered agent id; nothing for an unknown one. Never fails the caller: it is a diagnostic.</summary>
    public async Task RecordAsync(string agentId, string reason, CancellationToken cancellationToken)
    {
        try
        {
            await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
            await connection.ExecuteAsync(new CommandDefinition(
                """
                INSERT INTO agent_refusals AS r (agent_id, count, last_at, reason)
                SELECT @agentId, 1, now(), @reason WHERE EXISTS (SELECT 1 FROM agents WHERE id = @agentId)
                ON CONFLICT (agent_id) DO UPDATE SET
                    count = CASE WHEN r.last_at < now() - make_interval(secs => @kept) THEN 1 ELSE r.count + 1 END,
                    last_at = now(), reason = excluded.reason
                """, new { agentId, reason, kept = Kept.TotalSeconds }, cancellationToken: cancellationToken));
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or OperationCanceledException)
        {
            logger.LogInformation("Could not record the refusal of agent {AgentId}: {Reason}", agentId, e.Message);
        }
    }

    /// <summary>The agent connected: its earlier refusals are history.</summary>
    public async Task ForgetAsync(string agentId, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition("DELETE FROM agent_refusals WHERE agent_id = @agentId", new { agentId },
            cancellationToken: cancellationToken));
    }

    public async Task<IReadOnlyList<AgentRefusal>> RecentAsync(TimeSpan within, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        var rows = await connection.QueryAsync<(string AgentId, int Count, DateTime LastAt, string Reason)>(new CommandDefinition(
            """
            DELETE FROM agent_refusals WHERE last_at < now() - make_interval(secs => @kept);
            SELECT agent_id, count, last_at, reason FROM agent_refusals WHERE last_at > now() - make_interval(secs => @within) ORDER BY agent_id
            """, new { kept = Kept.TotalSeconds, within = within.TotalSeconds }, cancellationToken: cancellationToken));
        return [.. rows.Select(r => new AgentRefusal(r.AgentId, r.Count, new DateTimeOffset(DateTime.SpecifyKind(r.LastAt, DateTimeKind.Utc)), r.Reason))];
    }
}
