using System.Text.Json;
using Dapper;
using Npgsql;
using StreamSpace.Api.Features.Audit;
using StreamSpace.Api.Features.Replicas;
using StreamSpace.Api.Features.Sessions;
using StreamSpace.Contracts;

namespace StreamSpace.Api.Features.Agents;

public enum AgentAuthentication
{
    Accepted,
    Rejected,
    Revoked,
}

public enum AgentCredentialChange
{
    Done,
    NotFound,
    AlreadyExists,
}

public enum AgentProvisioning
{
    /// <summary>The agent already had this key.</summary>
    Unchanged,

    /// <summary>The key is now the agent's credential; a revoked agent given a new key is enabled again.</summary>
    Provisioned,

    /// <summary>This very key was revoked, so it stays revoked: only a new key enables the agent again.</summary>
    KeyRevoked,
}

/// <summary>Agent credentials and liveness in <c>agents</c>. Changes made by admins are audited in the same transaction.</summary>
public sealed class AgentStore(NpgsqlDataSource dataSource, IPlacedSessions sessions, ApiSettings settings, ReplicaIdentity replica)
{
    private sealed record Credential(string KeyHash, DateTime? RevokedAt);

    private sealed record AgentRow(string Id, string Status, string? Platform, string? Region, string? Version, int? ProtocolVersion,
        string Capacity, bool Draining, DateTime? RevokedAt, DateTime? LastHeartbeat, int HeartbeatIntervalSeconds,
        int? ClockSkewMs, DateTime? ConnectedAt, DateTime CreatedAt)
    {
        public AgentResponse ToView(IReadOnlyDictionary<string, int> activeSessions) => new(Id, Status, Platform, Region, Version, ProtocolVersion,
            JsonDocument.Parse(Capacity).RootElement, activeSessions.GetValueOrDefault(Id), Draining, RevokedAt is not null, Utc(LastHeartbeat), HeartbeatIntervalSeconds, ClockSkewMs, Utc(ConnectedAt),
            new DateTimeOffset(CreatedAt, TimeSpan.Zero));

        private static DateTimeOffset? Utc(DateTime? at) => at is null ? null : new DateTimeOffset(at.Value, TimeSpan.Zero);
    }

    /// <summary>Online means: connected, not revoked, and heard from within the allowed number of missed heartbeats.</summary>
    private string ViewQuery(string where) =>
        $"""
        SELECT a.id,
               CASE WHEN a.status = 'online' AND a.revoked_at IS NULL
                         AND a.last_heartbeat > now() - make_interval(secs => a.heartbeat_interval_seconds * {settings.AgentMissedHeartbeats})
                    THEN 'online' ELSE 'offline' END AS status,
               a.platform, a.region, a.version, a.protocol_version, a.capacity::text AS capacity, a.draining, a.revoked_at, a.last_heartbeat, a.heartbeat_interval_seconds, a.clock_skew_ms, a.connected_at, a.created_at
        FROM agents a
        {where}
        ORDER BY a.id
        """;

    public async Task<IReadOnlyList<AgentResponse>> ListAsync(CancellationToken cancellationToken)
    {
        List<AgentRow> rows;
        await using (var connection = await dataSource.OpenConnectionAsync(cancellationToken))
        {
            rows = [.. await connection.QueryAsync<AgentRow>(new CommandDefinition(ViewQuery(""), cancellationToken: cancellationToken))];
        }

        var active = await sessions.ActiveCountsAsync(agentId: null, cancellationToken);
        return [.. rows.Select(r => r.ToView(active))];
    }

    public async Task<AgentResponse?> GetAsync(string id, CancellationToken cancellationToken)
    {
        AgentRow? row;
        await using (var connection = await dataSource.OpenConnectionAsync(cancellationToken))
        {
            row = await connection.QuerySingleOrDefaultAsync<AgentRow>(new CommandDefinition(ViewQuery("WHERE a.id = @id"), new { id }, cancellationToken: cancellationToken));
        }

        return row?.ToView(await sessions.ActiveCountsAsync(id, cancellationToken));
    }

    /// <summary>Every agent's liveness and reports as recorded, for the diagnostics.</summary>
    public async Task<IReadOnlyList<AgentHealth>> ListHealthAsync(CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return [.. await connection.QueryAsync<AgentHealth>(new CommandDefinition(
            """
            SELECT id, status, last_heartbeat, heartbeat_interval_seconds, clock_skew_ms, protocol_version, revoked_at IS NOT NULL AS revoked,
                control_plane_url, reached_url, checks::text AS checks
            FROM agents ORDER BY id
            """, cancellationToken: cancellationToken))];
    }

    /// <summary>Registers an agent and returns its key, which is shown this once. A revoked id may be registered again.</summary>
    public async Task<(AgentCredentialChange Result, string? Key)> CreateAsync(Actor actor, string id, CancellationToken cancellationToken)
    {
        var key = AgentKeys.Generate();
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        var written = await connection.ExecuteAsync(new CommandDefinition(
            """
            INSERT INTO agents (id, key_hash) VALUES (@id, @hash)
            ON CONFLICT (id) DO UPDATE SET key_hash = excluded.key_hash, revoked_at = NULL, draining = false, updated_at = now()
                WHERE agents.revoked_at IS NOT NULL
            """, new { id, hash = AgentKeys.Hash(key) }, transaction, cancellationToken: cancellationToken));
        if (written == 0)
        {
            return (AgentCredentialChange.AlreadyExists, null);
        }

        await connection.WriteAsync(actor, "agent.created", "agent", id, transaction: transaction, cancellationToken: cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return (AgentCredentialChange.Done, key);
    }

    /// <summary>
    /// Makes the configured key the credential of the provisioned agent id, and of that id only: the hash is stored
    /// on that one row, so the key cannot authenticate any other agent. A key that was ever revoked is never made
    /// valid again, whether the agent is still revoked or was registered again with another key since: a restart
    /// must not undo an admin's revocation. Only a new key (re-)enables the agent.
    /// </summary>
    public async Task<AgentProvisioning> ProvisionAsync(string id, string key, CancellationToken cancellationToken)
    {
        var hash = AgentKeys.Hash(key);
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        var revoked = await connection.ExecuteScalarAsync<bool>(new CommandDefinition(
            "SELECT EXISTS (SELECT 1 FROM revoked_agent_keys WHERE agent_id = @id AND key_hash = @hash)",
            new { id, hash }, transaction, cancellationToken: cancellationToken));
        if (revoked)
        {
            return AgentProvisioning.KeyRevoked;
        }

        var changed = await connection.ExecuteAsync(new CommandDefinition(
            """
            INSERT INTO agents (id, key_hash) VALUES (@id, @hash)
            ON CONFLICT (id) DO UPDATE SET key_hash = excluded.key_hash, revoked_at = NULL, updated_at = now()
                WHERE agents.key_hash <> excluded.key_hash
            """, new { id, hash }, transaction, cancellationToken: cancellationToken));
        if (changed > 0)
        {
            await connection.WriteAsync(Actor.System, "agent.provisioned", "agent", id, transaction: transaction, cancellationToken: cancellationToken);
        }

        await transaction.CommitAsync(cancellationToken);
        return changed > 0 ? AgentProvisioning.Provisioned : AgentProvisioning.Unchanged;
    }

    /// <param name="keyHash">The presented key's <see cref="AgentKeys.Hash"/>.</param>
    public async Task<AgentAuthentication> AuthenticateAsync(string id, string keyHash, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        var credential = await connection.QuerySingleOrDefaultAsync<Credential>(new CommandDefinition(
            "SELECT key_hash, revoked_at FROM agents WHERE id = @id", new { id }, cancellationToken: cancellationToken));

        // Compare even for an unknown id, so timing does not reveal which ids exist.
        var matches = AgentKeys.HashesMatch(keyHash, credential?.KeyHash ?? new string('0', 64)) && credential is not null;
        return !matches ? AgentAuthentication.Rejected
            : credential!.RevokedAt is not null ? AgentAuthentication.Revoked
            : AgentAuthentication.Accepted;
    }

    /// <summary>
    /// Revokes the agent's key for good (its hash is remembered, see <see cref="ProvisionAsync"/>) and tells every
    /// API instance to close the agent's live connection (<see cref="Hub.AgentRevocations"/>) once this commits.
    /// </summary>
    public async Task<AgentCredentialChange> RevokeAsync(Actor actor, string id, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        var keyHash = await connection.QuerySingleOrDefaultAsync<string>(new CommandDefinition(
            """
            UPDATE agents SET revoked_at = coalesce(revoked_at, now()), status = 'offline', updated_at = now()
            WHERE id = @id
            RETURNING key_hash
            """, new { id }, transaction, cancellationToken: cancellationToken));
        if (keyHash is null)
        {
            return AgentCredentialChange.NotFound;
        }

        await connection.ExecuteAsync(new CommandDefinition(
            "INSERT INTO revoked_agent_keys (agent_id, key_hash) VALUES (@id, @keyHash) ON CONFLICT DO NOTHING",
            new { id, keyHash }, transaction, cancellationToken: cancellationToken));
        await Hub.AgentRevocations.NotifyAsync(connection, transaction, id, cancellationToken);
        await connection.WriteAsync(actor, "agent.revoked", "agent", id, transaction: transaction, cancellationToken: cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return AgentCredentialChange.Done;
    }

    public async Task<AgentCredentialChange> SetDrainingAsync(Actor actor, string id, bool draining, CancellationToken cancellationToken) =>
        await ChangeAsync(actor, id, draining ? "agent.drained" : "agent.undrained",
            "UPDATE agents SET draining = @draining, updated_at = now() WHERE id = @id", new { id, draining }, cancellationToken);

    /// <summary>
    /// Records the agent's hello, unless its credential was revoked or replaced since it authenticated: then nothing
    /// changes and the answer is false.
    /// </summary>
    /// <param name="keyHash">The hash of the key the connection authenticated with.</param>
    /// <param name="connectionId">The connection that said hello; only its close marks the agent offline again.</param>
    /// <param name="reachedUrl">The hub URL as this API saw the agent's request arrive (after any proxy).</param>
    public async Task<bool> MarkOnlineAsync(string id, string keyHash, Guid connectionId, HelloMessage hello, string reachedUrl, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return await connection.ExecuteAsync(new CommandDefinition(
            """
            UPDATE agents SET status = 'online', platform = @Platform, region = @Region, version = @Version,
                protocol_version = @ProtocolVersion, capacity = @Capacity::jsonb, heartbeat_interval_seconds = @HeartbeatIntervalSeconds,
                control_plane_url = @ControlPlaneUrl, reached_url = @reachedUrl, checks = '[]'::jsonb,
                connected_at = now(), last_heartbeat = now(), updated_at = now(), connection_id = @connectionId, replica_id = @replicaId
            WHERE id = @id AND key_hash = @keyHash AND revoked_at IS NULL
            """,
            new
            {
                id,
                replicaId = replica.Id,
                keyHash,
                connectionId,
                reachedUrl,
                hello.ControlPlaneUrl,
                hello.Platform,
                hello.Region,
                hello.Version,
                hello.ProtocolVersion,
                Capacity = JsonSerializer.Serialize(hello.Capacity, AgentProtocol.Json),
                hello.HeartbeatIntervalSeconds,
            }, cancellationToken: cancellationToken)) > 0;
    }

    /// <summary>
    /// Records a heartbeat, unless the credential was revoked or replaced since the agent authenticated: then nothing
    /// changes and the answer is false. The check rides on the heartbeat's own one-row update, so it costs nothing extra.
    /// </summary>
    public async Task<bool> RecordHeartbeatAsync(string id, string keyHash, HeartbeatMessage heartbeat, TimeSpan clockSkew, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return await connection.ExecuteAsync(new CommandDefinition(
            """
            UPDATE agents SET status = 'online', last_heartbeat = now(), capacity = @Capacity::jsonb, clock_skew_ms = @SkewMs
            WHERE id = @id AND key_hash = @keyHash AND revoked_at IS NULL
            """,
            new { id, keyHash, Capacity = JsonSerializer.Serialize(heartbeat.Capacity, AgentProtocol.Json), SkewMs = (int)clockSkew.TotalMilliseconds },
            cancellationToken: cancellationToken)) > 0;
    }

    /// <summary>Replaces the checks the agent last reported about its own platform.</summary>
    public async Task RecordChecksAsync(string id, IReadOnlyList<AgentCheck> checks, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition(
            "UPDATE agents SET checks = @Checks::jsonb WHERE id = @id",
            new { id, Checks = JsonSerializer.Serialize(checks, AgentProtocol.Json) }, cancellationToken: cancellationToken));
    }

    /// <summary>The agent's live connection and the protocol version it said hello with; null while it is offline.</summary>
    public async Task<AgentLink?> FindLinkAsync(string id, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return await connection.QuerySingleOrDefaultAsync<AgentLink>(new CommandDefinition(
            """
            SELECT connection_id AS "ConnectionId", protocol_version AS "ProtocolVersion" FROM agents
            WHERE id = @id AND status = 'online' AND connection_id IS NOT NULL AND protocol_version IS NOT NULL
            """,
            new { id }, cancellationToken: cancellationToken));
    }

    /// <summary>
    /// The replica holding the agent's current connection, and that connection, while the agent is online and not
    /// revoked; null otherwise. Whether that replica is still alive is <see cref="IReplicaDirectory"/>'s to say.
    /// </summary>
    public async Task<(Guid ReplicaId, Guid ConnectionId)?> HolderAsync(string id, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return await connection.QuerySingleOrDefaultAsync<(Guid ReplicaId, Guid ConnectionId)?>(new CommandDefinition(
            """
            SELECT replica_id, connection_id FROM agents
            WHERE id = @id AND status = 'online' AND revoked_at IS NULL AND replica_id IS NOT NULL AND connection_id IS NOT NULL
            """, new { id }, cancellationToken: cancellationToken));
    }

    /// <summary>True while <paramref name="connectionId"/> is the agent's current connection, on whichever replica.</summary>
    public async Task<bool> IsCurrentAsync(string id, Guid connectionId, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return await connection.ExecuteScalarAsync<bool>(new CommandDefinition(
            "SELECT EXISTS (SELECT 1 FROM agents WHERE id = @id AND connection_id = @connectionId)",
            new { id, connectionId }, cancellationToken: cancellationToken));
    }

    /// <summary>
    /// Marks the agent offline as its connection <paramref name="connectionId"/> ends, unless a newer connection of the
    /// agent has said hello since: a replaced connection's close can finish after its successor went online.
    /// </summary>
    public async Task MarkOfflineAsync(string id, Guid connectionId, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition(
            "UPDATE agents SET status = 'offline', updated_at = now() WHERE id = @id AND connection_id = @connectionId",
            new { id, connectionId }, cancellationToken: cancellationToken));
    }

    private async Task<AgentCredentialChange> ChangeAsync(Actor actor, string id, string action, string sql, object parameters, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        if (await connection.ExecuteAsync(new CommandDefinition(sql, parameters, transaction, cancellationToken: cancellationToken)) == 0)
        {
            return AgentCredentialChange.NotFound;
        }

        await connection.WriteAsync(actor, action, "agent", id, transaction: transaction, cancellationToken: cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return AgentCredentialChange.Done;
    }
}
