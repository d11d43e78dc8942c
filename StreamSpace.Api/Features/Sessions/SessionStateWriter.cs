using System.Text.Json;
using Dapper;
using Npgsql;
using StreamSpace.Api.Features.Audit;
using StreamSpace.Api.Infrastructure.Metrics;
using StreamSpace.Contracts;

namespace StreamSpace.Api.Features.Sessions;

/// <summary>
/// Every session state change goes through here, inside the caller's transaction: the state machine's check,
/// the history row (for usage), the audit row, and a NOTIFY that reaches live clients when (and only if) the transaction commits.
/// </summary>
public static class SessionStateWriter
{
    public const string NotifyChannel = "session_events";

    /// <summary>Applies a state the agent that runs the session reported; returns false when nothing changed or the report is stale.</summary>
    public static async Task<bool> ApplyAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string agentId,
        ReportedSession reported, ApiMetrics metrics, CancellationToken cancellationToken)
    {
        var current = await connection.QuerySingleOrDefaultAsync<(string State, string? FailureReason)?>(new CommandDefinition(
            "SELECT state, failure_reason FROM sessions WHERE id = @SessionId AND agent_id = @agentId FOR UPDATE",
            new { reported.SessionId, agentId }, transaction, cancellationToken: cancellationToken));
        if (current is not { } known)
        {
            return false;
        }

        var from = SessionNames.ParseState(known.State);
        var metadata = reported.PlatformMetadata is { } value ? JsonSerializer.Serialize(value) : null;
        if (from == reported.State && known.FailureReason == reported.FailureReason)
        {
            // The same state somewhere else, e.g. a session pod replaced by its Deployment: no state change to audit,
            // but what the session shows (its pod and address) follows.
            return metadata is not null && await MoveAsync(connection, transaction, reported.SessionId, metadata, cancellationToken);
        }

        if (!SessionStateMachine.AcceptsReport(from, reported.State))
        {
            return false;
        }

        await ChangeAsync(connection, transaction, new Actor(null, $"agent:{agentId}"), reported.SessionId, from, reported.State,
            reported.FailureReason, metadata, cancellationToken, metrics);
        return true;
    }

    /// <summary>Records where the session now runs, if that changed, and notifies live clients on commit.</summary>
    private static async Task<bool> MoveAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string sessionId, string platformMetadata,
        CancellationToken cancellationToken)
    {
        var moved = await connection.ExecuteAsync(new CommandDefinition(
            """
            UPDATE sessions SET platform_metadata = @platformMetadata::jsonb, updated_at = now()
            WHERE id = @sessionId AND platform_metadata IS DISTINCT FROM @platformMetadata::jsonb
            """, new { sessionId, platformMetadata }, transaction, cancellationToken: cancellationToken)) > 0;
        if (moved)
        {
            await NotifyAsync(connection, transaction, sessionId, cancellationToken);
        }

        return moved;
    }

    /// <summary>
    /// Moves the session to a new state, audits it and notifies live clients on commit. A launch's end (running, or
    /// failed before it ran) goes into <paramref name="metrics"/> when given; it is recorded before the caller commits,
    /// so a rolled-back change would still count: none of the callers rolls back after a successful change.
    /// </summary>
    public static async Task ChangeAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, Actor actor, string sessionId,
        SessionState from, SessionState to, string? failureReason, string? platformMetadata, CancellationToken cancellationToken,
        ApiMetrics? metrics = null)
    {
        var launch = await connection.QuerySingleOrDefaultAsync<(double Seconds, string Platform)?>(new CommandDefinition(
            """
            UPDATE sessions SET state = @to, failure_reason = @failureReason,
                platform_metadata = coalesce(@platformMetadata::jsonb, platform_metadata),
                started_at = CASE WHEN @started THEN coalesce(started_at, now()) ELSE started_at END,
                stopped_at = CASE WHEN @ended THEN coalesce(stopped_at, now()) ELSE stopped_at END,
                updated_at = now()
            WHERE id = @sessionId
            RETURNING extract(epoch FROM now() - created_at)::float8, coalesce(platform, 'unknown')
            """, new
            {
                sessionId, to = to.ToName(), failureReason, platformMetadata,
                started = to == SessionState.Running, ended = to is SessionState.Stopped or SessionState.Failed,
            }, transaction, cancellationToken: cancellationToken));
        if (metrics is not null && launch is { } started && from is SessionState.Pending or SessionState.Starting)
        {
            if (to == SessionState.Running)
            {
                metrics.SessionStarted(started.Platform, TimeSpan.FromSeconds(started.Seconds));
            }
            else if (to == SessionState.Failed)
            {
                metrics.SessionStartFailed(failureReason);
            }
        }

        await SessionStateHistory.RecordAsync(connection, transaction, sessionId, to, at: null, cancellationToken);
        await connection.WriteAsync(actor, "session.state_changed", "session", sessionId,
            new { From = from, To = to, Reason = failureReason }, transaction, cancellationToken);
        await NotifyAsync(connection, transaction, sessionId, cancellationToken);
    }

    /// <summary>Tells live clients the session changed; PostgreSQL delivers it only if the transaction commits.</summary>
    public static Task NotifyAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string sessionId, CancellationToken cancellationToken) =>
        connection.ExecuteAsync(new CommandDefinition(
            "SELECT pg_notify(@channel, json_build_object('id', id, 'user_id', user_id)::text) FROM sessions WHERE id = @sessionId",
            new { channel = NotifyChannel, sessionId }, transaction, cancellationToken: cancellationToken));
}
