using System.Text.Json;
using Dapper;
using Npgsql;
using StreamSpace.Api.Features.Audit;
using StreamSpace.Contracts;

namespace StreamSpace.Api.Features.Sessions;

/// <summary>
/// Writes a session state that an agent reported, with its audit row, inside the caller's transaction.
/// Only the agent that runs the session may change it.
/// </summary>
public static class SessionStateWriter
{
    public static async Task<bool> ApplyAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string agentId,
        ReportedSession reported, CancellationToken cancellationToken)
    {
        var previous = await connection.QuerySingleOrDefaultAsync<string>(new CommandDefinition(
            """
            WITH old AS (SELECT id, state FROM sessions WHERE id = @SessionId AND agent_id = @agentId FOR UPDATE)
            UPDATE sessions s SET state = @State, failure_reason = @FailureReason,
                platform_metadata = coalesce(@Metadata::jsonb, s.platform_metadata),
                started_at = CASE WHEN @State = 'running' THEN coalesce(s.started_at, now()) ELSE s.started_at END,
                stopped_at = CASE WHEN @State IN ('stopped', 'failed') THEN coalesce(s.stopped_at, now()) ELSE s.stopped_at END,
                updated_at = now()
            FROM old
            WHERE s.id = old.id AND (old.state <> @State OR s.failure_reason IS DISTINCT FROM @FailureReason)
            RETURNING old.state
            """,
            new
            {
                reported.SessionId,
                agentId,
                reported.State,
                reported.FailureReason,
                Metadata = reported.PlatformMetadata is { } metadata ? JsonSerializer.Serialize(metadata) : null,
            }, transaction, cancellationToken: cancellationToken));
        if (previous is null)
        {
            return false;
        }

        await connection.WriteAsync(new Actor(null, $"agent:{agentId}"), "session.state_changed", "session", reported.SessionId,
            new { From = previous, To = reported.State, Reason = reported.FailureReason }, transaction, cancellationToken);
        return true;
    }
}
