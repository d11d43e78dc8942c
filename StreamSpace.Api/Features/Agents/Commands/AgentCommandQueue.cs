using System.Text.Json;
using Dapper;
using Npgsql;
using StreamSpace.Api.Features.Sessions;
using StreamSpace.Contracts;

namespace StreamSpace.Api.Features.Agents.Commands;

public static class CommandStatus
{
    public const string Pending = "pending";
    public const string Sent = "sent";
    public const string Acked = "acked";
    public const string Completed = "completed";
    public const string Failed = "failed";
}

/// <summary>
/// Commands for agents, persisted in <c>agent_commands</c> before they are sent and delivered at least once:
/// whatever is not finished is sent again when the agent reconnects, and agents treat a repeated id as the same command.
/// </summary>
public sealed class AgentCommandQueue(NpgsqlDataSource dataSource, IPlacedSessions sessions, ApiSettings settings, ILogger<AgentCommandQueue> logger)
{
    /// <summary>
    /// NOTIFYed with "agent id origin-replica-id" once a command for the agent has committed and its request has read
    /// what it answers (<see cref="NotifyAsync"/>), so the replica holding the agent sends it. Not in the command's own
    /// transaction: a holder elsewhere could then have the agent acknowledge a start before the request read the new
    /// session, and a launch's 202 would say starting instead of pending. A notification lost (or never sent, the
    /// origin died after its commit) is made up for by <see cref="Hub.CommandSweep"/>.
    /// </summary>
    public const string NotifyChannel = "agent_commands";

    private sealed record OpenCommand(Guid Id, string CommandType, string? SessionId, string Payload, DateTime CreatedAt);

    /// <summary>
    /// Writes a command in the caller's transaction. After commit, deliver it (<see cref="ISessionAgents.DeliverAsync"/>):
    /// here if this replica holds the agent, and through <see cref="NotifyAsync"/> wherever it is held.
    /// </summary>
    public static async Task<Guid> EnqueueAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string agentId, string? sessionId,
        string commandType, object payload, CancellationToken cancellationToken)
    {
        var id = Guid.CreateVersion7();
        await connection.ExecuteAsync(new CommandDefinition(
            """
            INSERT INTO agent_commands (id, agent_id, session_id, command_type, payload)
            VALUES (@id, @agentId, @sessionId, @commandType, @payload::jsonb)
            """,
            new { id, agentId, sessionId, commandType, payload = JsonSerializer.Serialize(payload, AgentProtocol.Json) },
            transaction, cancellationToken: cancellationToken));
        return id;
    }

    /// <summary>Tells every replica that the agent has new commands; the one holding it sends them (the origin ignores its own).</summary>
    public async Task NotifyAsync(string agentId, Guid origin, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition("SELECT pg_notify(@channel, @payload)",
            new { channel = NotifyChannel, payload = $"{agentId} {origin}" }, cancellationToken: cancellationToken));
    }

    /// <summary>
    /// Sends the agent its commands: new ones only, or after a reconnect every unfinished one (the agent may have
    /// missed them, or their answers may have been lost). The caller serialises deliveries to one agent.
    /// </summary>
    /// <param name="connectionId">
    /// The connection <paramref name="send"/> writes to. Nothing is taken unless it is still the agent's current one,
    /// so a replica holding a stale, half-open connection sends nothing and marks nothing sent.
    /// </param>
    /// <param name="send">Sends one message to the agent on that connection.</param>
    public async Task DeliverAsync(string agentId, Guid connectionId, Func<AgentMessage, CancellationToken, ValueTask> send, bool includeUnfinished,
        CancellationToken cancellationToken)
    {
        string[] statuses = includeUnfinished ? [CommandStatus.Pending, CommandStatus.Sent, CommandStatus.Acked] : [CommandStatus.Pending];
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        var commands = await connection.QueryAsync<OpenCommand>(new CommandDefinition(
            """
            UPDATE agent_commands c SET status = CASE WHEN c.status = 'pending' THEN 'sent' ELSE c.status END,
                attempts = c.attempts + 1, sent_at = now()
            FROM (SELECT id FROM agent_commands WHERE agent_id = @agentId AND status = ANY(@statuses) ORDER BY created_at FOR UPDATE) open
            WHERE c.id = open.id AND EXISTS (SELECT 1 FROM agents WHERE id = @agentId AND connection_id = @connectionId)
            RETURNING c.id, c.command_type, c.session_id, c.payload::text AS payload, c.created_at
            """, new { agentId, connectionId, statuses }, cancellationToken: cancellationToken));

        foreach (var command in commands.OrderBy(c => c.CreatedAt))
        {
            using var payload = JsonDocument.Parse(command.Payload);
            await send(new CommandMessage(command.Id, command.CommandType, command.SessionId, payload.RootElement.Clone()), cancellationToken);
            logger.LogInformation("Sent {CommandType} {CommandId} for session {SessionId} to agent {AgentId}",
                command.CommandType, command.Id, command.SessionId, agentId);
        }
    }

    /// <summary>
    /// Which of <paramref name="agentIds"/> have a command pending for longer than <paramref name="olderThan"/>: its
    /// NOTIFY was lost (the holder was re-opening its listening connection), so the sweep sends it.
    /// </summary>
    public async Task<IReadOnlyList<string>> AgentsWithOverdueCommandsAsync(IReadOnlyCollection<string> agentIds, TimeSpan olderThan,
        CancellationToken cancellationToken)
    {
        if (agentIds.Count == 0)
        {
            return [];
        }

        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return [.. await connection.QueryAsync<string>(new CommandDefinition(
            """
            SELECT DISTINCT agent_id FROM agent_commands
            WHERE status = 'pending' AND agent_id = ANY(@ids) AND created_at < now() - make_interval(secs => @seconds)
            """, new { ids = agentIds.ToArray(), seconds = olderThan.TotalSeconds }, cancellationToken: cancellationToken))];
    }

    /// <summary>Up to 20 commands sent more than 30 seconds ago that their agent has not acknowledged, oldest first.</summary>
    public async Task<IReadOnlyList<UnansweredCommand>> UnansweredAsync(CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return [.. await connection.QueryAsync<UnansweredCommand>(new CommandDefinition(
            """
            SELECT id, command_type, agent_id, extract(epoch FROM now() - coalesce(sent_at, created_at))::float8 AS seconds
            FROM agent_commands WHERE status = 'sent' AND coalesce(sent_at, created_at) < now() - interval '30 seconds'
            ORDER BY created_at LIMIT 20
            """, cancellationToken: cancellationToken))];
    }

    /// <summary>The agent has the command. For a start, the session is now starting.</summary>
    public async Task MarkAckedAsync(string agentId, Guid commandId, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        var acked = await connection.QuerySingleOrDefaultAsync<(string? SessionId, string CommandType)?>(new CommandDefinition(
            """
            UPDATE agent_commands SET status = 'acked', acked_at = now()
            WHERE id = @commandId AND agent_id = @agentId AND status IN ('pending', 'sent')
            RETURNING session_id, command_type
            """, new { commandId, agentId }, transaction, cancellationToken: cancellationToken));
        if (acked is { SessionId: { } sessionId, CommandType: CommandTypes.StartSession })
        {
            await sessions.ApplyAsync(connection, transaction, agentId, new ReportedSession(sessionId, SessionState.Starting), cancellationToken);
        }

        await transaction.CommitAsync(cancellationToken);
    }

    /// <summary>Records the command's outcome and the session state it produced, in one transaction. A repeated answer changes nothing.</summary>
    public async Task CompleteAsync(string agentId, CommandResultMessage result, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        var finished = await connection.ExecuteAsync(new CommandDefinition(
            """
            UPDATE agent_commands SET status = @status, error = @Error, result = @resultJson::jsonb, completed_at = now()
            WHERE id = @CommandId AND agent_id = @agentId AND status IN ('pending', 'sent', 'acked')
            """,
            new
            {
                result.CommandId,
                agentId,
                status = result.Success ? CommandStatus.Completed : CommandStatus.Failed,
                result.Error,
                resultJson = JsonSerializer.Serialize(result, AgentProtocol.Json),
            }, transaction, cancellationToken: cancellationToken));

        if (finished > 0 && result.Session is { } session)
        {
            await sessions.ApplyAsync(connection, transaction, agentId, session, cancellationToken);
        }

        await transaction.CommitAsync(cancellationToken);
        if (finished > 0)
        {
            logger.LogInformation("Agent {AgentId} finished command {CommandId}: {Outcome}", agentId, result.CommandId,
                result.Success ? "completed" : $"failed: {result.Error}");
        }
    }

    /// <summary>Fails every command that got no answer within COMMAND_TIMEOUT, and the sessions waiting on them.</summary>
    public async Task<int> FailExpiredAsync(CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        var expired = (await connection.QueryAsync<(Guid Id, string AgentId, string? SessionId, string CommandType, string Error)>(new CommandDefinition(
            """
            UPDATE agent_commands SET status = 'failed', completed_at = now(),
                error = format('agent %s did not answer the %s command within %s', agent_id, command_type, @timeoutText)
            WHERE status IN ('pending', 'sent', 'acked') AND created_at < now() - make_interval(secs => @seconds)
            RETURNING id, agent_id, session_id, command_type, error
            """,
            new { seconds = settings.CommandTimeout.TotalSeconds, timeoutText = StreamSpace.Settings.Duration.Format(settings.CommandTimeout) },
            transaction, cancellationToken: cancellationToken))).ToList();

        foreach (var command in expired.Where(c => c.SessionId is not null))
        {
            await sessions.ApplyAsync(connection, transaction, command.AgentId,
                new ReportedSession(command.SessionId!, SessionState.Failed, command.Error), cancellationToken);
            logger.LogWarning("Command {CommandId} failed: {Error}", command.Id, command.Error);
        }

        await transaction.CommitAsync(cancellationToken);
        return expired.Count;
    }
}
