using System.Security.Cryptography;
using Dapper;
using Npgsql;
using StreamSpace.Api.Features.Audit;
using StreamSpace.Api.Features.Groups;
using StreamSpace.Api.Features.Sessions.List;
using StreamSpace.Api.Features.Templates;
using StreamSpace.Contracts;

namespace StreamSpace.Api.Features.Sessions;

public enum SessionChange
{
    Done,
    NotFound,
    IllegalTransition,
    UnknownTemplate,
    UnknownUser,
    NotAllowed,
    QuotaReached,
    NoAgent,
}

public sealed record SessionResult(SessionChange Change, SessionResponse? Session = null, string? Detail = null, string? AgentId = null);

/// <summary>
/// Sessions: placing them on agents, and turning users' requests into commands. Each request changes the session,
/// writes its command and its audit row in one transaction, so none is ever half done; the command is delivered
/// once that transaction has committed.
/// </summary>
public sealed class SessionStore(NpgsqlDataSource dataSource, ApiSettings settings, SessionListCache lists, ISessionAgents agents, ITemplateCatalog templates,
    IUserGroups groups) : ISessionHealth, IUserSessions
{
    /// <summary>A session of the owner's, or any session for an admin; another user's session does not exist for them.</summary>
    public async Task<SessionResponse?> GetAsync(string id, Guid viewerId, bool viewerIsAdmin, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        var row = await connection.QuerySingleOrDefaultAsync<SessionRow>(new CommandDefinition(
            $"{SessionRow.Select} WHERE s.id = @id AND (@viewerIsAdmin OR s.user_id = @viewerId)",
            new { id, viewerId, viewerIsAdmin }, cancellationToken: cancellationToken));
        return row?.ToView();
    }

    /// <summary>The sessions changed since <paramref name="since"/>, for live updates that may have missed their notifications.</summary>
    /// <summary>
    /// The sessions changed within <paramref name="lookBack"/> of now. An age, not an instant: the caller measures it
    /// on its own clock and PostgreSQL applies it to its own, so a skew between the two clocks cannot hide a change.
    /// </summary>
    public async Task<IReadOnlyList<Events.SessionChanged>> ChangedWithinAsync(TimeSpan lookBack, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return [.. await connection.QueryAsync<Events.SessionChanged>(new CommandDefinition(
            "SELECT id, user_id FROM sessions WHERE updated_at >= now() - make_interval(secs => @seconds) ORDER BY updated_at",
            new { seconds = lookBack.TotalSeconds }, cancellationToken: cancellationToken))];
    }

    public async Task<IReadOnlyList<SessionResponse>> ListAsync(Guid? userId, string? username, string? state, CancellationToken cancellationToken)
    {
        // Only the filters given become predicates: "@x IS NULL OR …" would give PostgreSQL one generic plan for every
        // combination, and each combination's text is its own auto-prepared statement.
        var filters = new List<string>(3);
        if (userId is not null)
        {
            filters.Add("s.user_id = @userId");
        }

        if (username is not null)
        {
            filters.Add("lower(u.username) = lower(@username)");
        }

        if (state is not null)
        {
            filters.Add("s.state = @state");
        }

        var where = filters.Count == 0 ? "" : "WHERE " + string.Join(" AND ", filters);
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        var rows = await connection.QueryAsync<SessionRow>(new CommandDefinition(
            $"""
            {SessionRow.Select}
            {where}
            ORDER BY s.created_at DESC
            LIMIT 1000
            """, new { userId, username, state }, cancellationToken: cancellationToken));
        return [.. rows.Select(r => r.ToView())];
    }

    public async Task<SessionResult> CreateAsync(Actor actor, Guid ownerId, string templateName, CancellationToken cancellationToken)
    {
        // A launch that lost its agent to a concurrent one (it filled up, went away) picks again; the pick that comes
        // back empty answers "no agent".
        for (var attempt = 1; ; attempt++)
        {
            var result = await TryCreateAsync(actor, ownerId, templateName, lastAttempt: attempt == 3, cancellationToken);
            if (result is not null)
            {
                return result;
            }
        }
    }

    /// <summary>
    /// One try at a launch. The rows that serialise launches are locked last, each for a statement and the commit:
    /// the owner's row (their quota) and then the agent's (its capacity). Everything else (the session, its command,
    /// the audit row, the notification) is written before, so concurrent launches queue only on those few statements.
    /// The locks are FOR NO KEY UPDATE: the session's foreign keys already hold KEY SHARE locks on both rows, which a
    /// FOR UPDATE would have to wait out (two launches doing that would deadlock). Null when the agent picked without
    /// a lock is full or gone by the time it is locked.
    /// </summary>
    private async Task<SessionResult?> TryCreateAsync(Actor actor, Guid ownerId, string templateName, bool lastAttempt, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        var template = await templates.GetAsync(connection, transaction, templateName, cancellationToken);
        if (template is null)
        {
            return new(SessionChange.UnknownTemplate, Detail: $"No template is named '{templateName}'.");
        }

        var owner = await connection.QuerySingleOrDefaultAsync<string>(new CommandDefinition(
            "SELECT username FROM users WHERE id = @ownerId AND NOT disabled", new { ownerId }, transaction, cancellationToken: cancellationToken));
        if (owner is null)
        {
            return new(SessionChange.UnknownUser, Detail: "The session's owner does not exist or is disabled.");
        }

        if (await groups.LaunchRefusalAsync(connection, transaction, ownerId, templateName, cancellationToken) is { } refusal)
        {
            return new(SessionChange.NotAllowed, Detail: refusal);
        }

        // The owner's groups set the quota and the resource caps, read in this launch's transaction.
        var limits = await groups.LimitsAsync(connection, transaction, ownerId, cancellationToken);
        var quota = limits.SessionQuota(settings.SessionQuota);

        // Checked here without a lock to answer at once; checked again below under the lock, which is what counts.
        var active = await CountActiveAsync(connection, transaction, ownerId, cancellationToken);
        if (active >= quota)
        {
            return QuotaReached(owner, active, limits);
        }

        var agent = await PickAgentAsync(connection, transaction, template.Platforms, template.MinimumAgentProtocol, cancellationToken);
        if (agent is null)
        {
            return NoAgent(template);
        }

        var id = "sess-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6));
        await connection.ExecuteAsync(new CommandDefinition(
            """
            INSERT INTO sessions (id, user_id, template, state, agent_id, platform, record)
            VALUES (@id, @ownerId, @templateName, @Pending, @AgentId, @Platform, @Record)
            """,
            new { id, ownerId, templateName, Pending = SessionState.Pending.ToName(), agent.Value.AgentId, agent.Value.Platform, template.Record }, transaction, cancellationToken: cancellationToken));
        await agents.EnqueueAsync(connection, transaction, agent.Value.AgentId, id, CommandTypes.StartSession,
            new SessionCommandPayload(id, ownerId, owner, limits.Cap(template.ToSessionTemplate())), cancellationToken);
        await connection.WriteAsync(actor, "session.created", "session", id, new { Template = templateName, Owner = owner, Agent = agent.Value.AgentId }, transaction, cancellationToken);
        await SessionStateWriter.NotifyAsync(connection, transaction, id, cancellationToken);
        // The session as created, read before commit: once committed, another launch's delivery can send its command
        // and the agent's ack can move it on before a read after commit.
        var created = (await connection.QuerySingleAsync<SessionRow>(new CommandDefinition(
            $"{SessionRow.Select} WHERE s.id = @id", new { id }, transaction, cancellationToken: cancellationToken))).ToView();

        // The locked part. Each count is its own statement after its lock, so it sees every launch committed while this
        // one waited (under READ COMMITTED a statement's snapshot is taken when it starts). The counts include this session.
        var lockedOwner = await connection.ExecuteScalarAsync<int>(new CommandDefinition(
            "SELECT 1 FROM users WHERE id = @ownerId AND NOT disabled FOR NO KEY UPDATE", new { ownerId }, transaction, cancellationToken: cancellationToken));
        if (lockedOwner != 1)
        {
            return new(SessionChange.UnknownUser, Detail: "The session's owner does not exist or is disabled.");
        }

        active = await CountActiveAsync(connection, transaction, ownerId, cancellationToken);
        if (active > quota)
        {
            return QuotaReached(owner, active - 1, limits);
        }

        if (!await LockAgentAsync(connection, transaction, agent.Value.AgentId, cancellationToken))
        {
            return lastAttempt ? NoAgent(template) : null;
        }

        await transaction.CommitAsync(cancellationToken);
        // At once, not when the NOTIFY comes back: the caller's next list shows the new session.
        lists.Invalidate();
        await agents.DeliverAsync(agent.Value.AgentId);
        return new(SessionChange.Done, created, AgentId: agent.Value.AgentId);
    }

    private SessionResult QuotaReached(string owner, int active, UserLimits limits) =>
        new(SessionChange.QuotaReached, Detail: $"{owner} already has {active} active sessions, the most allowed ({limits.SessionQuotaSource(settings.SessionQuota)}); stop one first.");

    private static SessionResult NoAgent(TemplateRow template) =>
        new(SessionChange.NoAgent, Detail: $"No online, non-draining agent with free capacity runs a platform this template supports ({string.Join(", ", template.Platforms)})" +
            (template.MinimumAgentProtocol > AgentProtocol.MuxVersion ? $" with agent protocol {template.MinimumAgentProtocol} or later, which its closed clipboard direction needs." : "."));

    private static Task<int> CountActiveAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, Guid ownerId, CancellationToken cancellationToken) =>
        connection.ExecuteScalarAsync<int>(new CommandDefinition(
            "SELECT count(*) FROM sessions WHERE user_id = @ownerId AND state = ANY(@Active)",
            new { ownerId, Active = SessionStateMachine.ActiveNames }, transaction, cancellationToken: cancellationToken));

    /// <summary>Stops, hibernates or wakes a session: moves its state and sends its agent the command.</summary>
    public async Task<SessionResult> RequestAsync(Actor actor, SessionAction action, string id, Guid viewerId, bool viewerIsAdmin, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        var result = await RequestAsync(connection, transaction, actor, action, id, viewerId, viewerIsAdmin, cancellationToken);
        if (result.Change != SessionChange.Done)
        {
            return result;
        }

        await transaction.CommitAsync(cancellationToken);
        lists.Invalidate();
        result = result with { Session = await GetAsync(id, viewerId, true, cancellationToken) };
        if (result.AgentId is { } agentId)
        {
            await agents.DeliverAsync(agentId);
        }

        return result;
    }

    /// <summary>
    /// Asks the agents to stop every active session of the user, in the caller's transaction, exactly as
    /// <see cref="RequestAsync(Actor, SessionAction, string, Guid, bool, CancellationToken)"/> does for one session. Returns the
    /// agents whose commands <see cref="DeliverAsync"/> sends after commit. Sessions already stopping keep their stop command in flight.
    /// </summary>
    public async Task<IReadOnlyList<string>> StopAllAsync(NpgsqlConnection connection, NpgsqlTransaction transaction,
        Actor actor, Guid userId, CancellationToken cancellationToken)
    {
        var ids = await connection.QueryAsync<string>(new CommandDefinition(
            "SELECT id FROM sessions WHERE user_id = @userId AND state = ANY(@Active) AND state <> @Stopping ORDER BY id",
            new { userId, Active = SessionStateMachine.ActiveNames, Stopping = SessionState.Stopping.ToName() }, transaction, cancellationToken: cancellationToken));
        var agentIds = new HashSet<string>();
        foreach (var id in ids)
        {
            var result = await RequestAsync(connection, transaction, actor, SessionAction.Stop, id, userId, viewerIsAdmin: true, cancellationToken);
            if (result.AgentId is { } agentId)
            {
                agentIds.Add(agentId);
            }
        }

        return [.. agentIds];
    }

    /// <summary>Sends the agents the commands <see cref="StopAllAsync"/> wrote, once its transaction has committed.</summary>
    public async Task DeliverAsync(IReadOnlyList<string> agentIds)
    {
        foreach (var agentId in agentIds)
        {
            await agents.DeliverAsync(agentId);
        }
    }

    /// <summary>One request, in the caller's transaction: the session's new state, its command and its audit row.</summary>
    private async Task<SessionResult> RequestAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, Actor actor,
        SessionAction action, string id, Guid viewerId, bool viewerIsAdmin, CancellationToken cancellationToken)
    {
        // The owner may be deleted by now (their sessions outlive them); a stop needs only the session id.
        var session = await connection.QuerySingleOrDefaultAsync<(string State, string? AgentId, Guid UserId, string? Username, string Template, bool Record)?>(new CommandDefinition(
            """
            SELECT s.state, s.agent_id, s.user_id, u.username, s.template, s.record FROM sessions s LEFT JOIN users u ON u.id = s.user_id
            WHERE s.id = @id AND (@viewerIsAdmin OR s.user_id = @viewerId) FOR UPDATE OF s
            """, new { id, viewerId, viewerIsAdmin }, transaction, cancellationToken: cancellationToken));
        if (session is not { } found)
        {
            return new(SessionChange.NotFound, Detail: $"No session {id}.");
        }

        var current = SessionNames.ParseState(found.State);
        var next = SessionStateMachine.AfterRequest(action, current);
        if (next is null)
        {
            return new(SessionChange.IllegalTransition, Detail: $"Cannot {action.ToName()} a session that is {found.State}.");
        }

        // A wake runs the template again, so it is a launch as far as the template's groups go: a user taken out of them
        // (or a template limited since) cannot resume it. Stopping it stays allowed.
        if (action == SessionAction.Wake && await groups.LaunchRefusalAsync(connection, transaction, found.UserId, found.Template, cancellationToken) is { } refusal)
        {
            return new(SessionChange.NotAllowed, Detail: refusal);
        }

        // A session whose agent is gone, or that already failed, has nothing left to run: it stops at once.
        if (found.AgentId is null || (action == SessionAction.Stop && current == SessionState.Failed))
        {
            next = SessionState.Stopped;
        }
        else
        {
            var template = await templates.GetAsync(connection, transaction, found.Template, cancellationToken);
            var sessionTemplate = template?.ToSessionTemplate()
                ?? new SessionTemplate(found.Template, null, null, 5900, null, null, new Dictionary<string, string>(), true, 0, null);
            // A wake may have to create the session's pod again: it gets the owner's resource caps as they are now.
            // A stop or a hibernate creates nothing, so it reads no limits (and a user's deletion, which stops their
            // sessions while it holds the user's row, does no more work than before).
            if (action == SessionAction.Wake)
            {
                sessionTemplate = (await groups.LimitsAsync(connection, transaction, found.UserId, cancellationToken)).Cap(sessionTemplate);
                if (found.Record)
                {
                    // Recorded before it slept (its template, or an admin asked): the woken session is recorded on.
                    sessionTemplate = sessionTemplate with { Record = true };
                }
                else if (sessionTemplate.Record)
                {
                    // The template came to require recording while the session slept: its owner is told from now on.
                    await connection.ExecuteAsync(new CommandDefinition("UPDATE sessions SET record = true WHERE id = @id",
                        new { id }, transaction, cancellationToken: cancellationToken));
                }
            }
            var commandType = action switch
            {
                SessionAction.Stop => CommandTypes.StopSession,
                SessionAction.Hibernate => CommandTypes.HibernateSession,
                _ => CommandTypes.WakeSession,
            };
            await agents.EnqueueAsync(connection, transaction, found.AgentId, id, commandType,
                new SessionCommandPayload(id, found.UserId, found.Username ?? "", sessionTemplate), cancellationToken);
        }

        await SessionStateWriter.ChangeAsync(connection, transaction, actor, id, current, next.Value, null, null, cancellationToken);
        return new(SessionChange.Done, AgentId: found.AgentId);
    }

    /// <summary>The session's state and agent, whoever asks: for the VNC proxy, whose ticket already proved the right to view.</summary>
    public async Task<(SessionState State, string? AgentId)?> FindPlacementAsync(string id, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        var found = await connection.QuerySingleOrDefaultAsync<(string State, string? AgentId)?>(new CommandDefinition(
            "SELECT state, agent_id FROM sessions WHERE id = @id", new { id }, cancellationToken: cancellationToken));
        return found is { } placement ? (SessionNames.ParseState(placement.State), placement.AgentId) : null;
    }

    public async Task<IReadOnlyList<StuckSession>> StuckAsync(TimeSpan olderThan, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return [.. await connection.QueryAsync<StuckSession>(new CommandDefinition(
            """
            SELECT id, state, failure_reason AS reason, agent_id, extract(epoch FROM now() - updated_at)::float8 AS seconds
            FROM sessions WHERE state IN (@Pending, @Starting) AND updated_at < now() - make_interval(secs => @seconds)
            ORDER BY updated_at LIMIT 20
            """, new { seconds = olderThan.TotalSeconds, Pending = SessionState.Pending.ToName(), Starting = SessionState.Starting.ToName() }, cancellationToken: cancellationToken))];
    }

    public Task<IReadOnlyList<PlacedSession>> ActiveAsync(CancellationToken cancellationToken) =>
        PlacedAsync("SELECT id, agent_id FROM sessions WHERE state = ANY(@Active) AND agent_id IS NOT NULL ORDER BY id", cancellationToken);

    public Task<IReadOnlyList<PlacedSession>> RunningAsync(CancellationToken cancellationToken) =>
        PlacedAsync("SELECT id, agent_id FROM sessions WHERE state = @Running AND agent_id IS NOT NULL ORDER BY id LIMIT 20", cancellationToken);

    private async Task<IReadOnlyList<PlacedSession>> PlacedAsync(string sql, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return [.. await connection.QueryAsync<PlacedSession>(new CommandDefinition(sql,
            new { Active = SessionStateMachine.ActiveNames, Running = SessionState.Running.ToName() }, cancellationToken: cancellationToken))];
    }

    /// <summary>
    /// The online, non-draining agent of a fitting platform with free capacity and the fewest active sessions, read
    /// without a lock: <see cref="LockAgentAsync"/> confirms it at the end of the launch.
    /// </summary>
    private async Task<(string AgentId, string Platform)?> PickAgentAsync(NpgsqlConnection connection, NpgsqlTransaction transaction,
        IReadOnlyList<string> platforms, int minimumProtocol, CancellationToken cancellationToken) =>
        await connection.QuerySingleOrDefaultAsync<(string, string)?>(new CommandDefinition(
            $"""
            SELECT a.id, a.platform FROM agents a
            CROSS JOIN LATERAL (SELECT count(*) AS active FROM sessions s WHERE s.agent_id = a.id AND s.state = ANY(@Active)) load
            WHERE {PlaceableAgent} AND a.platform = ANY(@platforms) AND a.protocol_version >= @minimumProtocol
              AND load.active < coalesce((a.capacity ->> 'max_sessions')::int, 0)
            ORDER BY load.active, a.id
            LIMIT 1
            """, new { Active = SessionStateMachine.ActiveNames, platforms = platforms.ToArray(), minimumProtocol, missed = settings.AgentMissedHeartbeats }, transaction, cancellationToken: cancellationToken));

    /// <summary>
    /// Locks the picked agent's row until commit, if it may still take sessions, then counts its active sessions
    /// (this launch's among them) in a statement of its own, which sees every launch committed while this one waited
    /// for the lock. False when it went away or filled up meanwhile.
    /// </summary>
    private async Task<bool> LockAgentAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string agentId, CancellationToken cancellationToken)
    {
        var capacity = await connection.QuerySingleOrDefaultAsync<int?>(new CommandDefinition(
            $"SELECT coalesce((a.capacity ->> 'max_sessions')::int, 0) FROM agents a WHERE a.id = @agentId AND {PlaceableAgent} FOR NO KEY UPDATE",
            new { agentId, missed = settings.AgentMissedHeartbeats }, transaction, cancellationToken: cancellationToken));
        if (capacity is null)
        {
            return false;
        }

        var active = await connection.ExecuteScalarAsync<int>(new CommandDefinition(
            "SELECT count(*) FROM sessions WHERE agent_id = @agentId AND state = ANY(@Active)",
            new { agentId, Active = SessionStateMachine.ActiveNames }, transaction, cancellationToken: cancellationToken));
        return active <= capacity;
    }

    /// <summary>An agent that may take new sessions: online (by its heartbeat too), not revoked, not draining.</summary>
    private const string PlaceableAgent =
        "a.status = 'online' AND a.revoked_at IS NULL AND NOT a.draining " +
        "AND a.last_heartbeat > now() - make_interval(secs => a.heartbeat_interval_seconds * @missed)";
}
