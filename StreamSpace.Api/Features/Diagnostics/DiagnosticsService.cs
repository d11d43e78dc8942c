using System.Text;
using Dapper;
using Npgsql;
using StreamSpace.Api.Features.Agents;
using StreamSpace.Api.Features.Auth;
using StreamSpace.Api.Features.Auth.Oidc;
using StreamSpace.Api.Features.Recordings;
using StreamSpace.Api.Features.Sessions;
using StreamSpace.Api.Features.Users;
using StreamSpace.Api.Infrastructure.Database;
using StreamSpace.Contracts;

namespace StreamSpace.Api.Features.Diagnostics;

/// <summary>
/// The troubleshooting guide, run by the product: each check looks at the real state and says what it found and
/// what to do. One check or more per section of the guide; docs/troubleshooting.md maps symptoms to check ids.
/// </summary>
public sealed class DiagnosticsService(NpgsqlDataSource dataSource, ApiSettings settings, TimeProvider time,
    IUserAccounts users, IAgentHealth agents, ISessionHealth sessions, ProviderTokens providerTokens,
    IRecordingHealth recordings)
{
    /// <summary>Agent clocks further off than this make tokens look expired or not yet valid.</summary>
    public static readonly TimeSpan MaxClockSkew = TimeSpan.FromSeconds(5);

    public async Task<DiagnosticsReport> RunAsync(bool probeVnc, CancellationToken cancellationToken)
    {
        var checks = new List<DiagnosticCheck>();
        NpgsqlConnection connection;
        try
        {
            connection = await dataSource.OpenConnectionAsync(cancellationToken);
        }
        catch (NpgsqlException e)
        {
            checks.Add(DiagnosticCheck.Fail("database.reachable", "PostgreSQL is reachable", e.Message,
                "Check that PostgreSQL runs and that ConnectionStrings__streamspace points at it (host, port, credentials)."));
            return Report(checks);
        }

        await using (connection)
        {
            checks.Add(DiagnosticCheck.Ok("database.reachable", "PostgreSQL is reachable", $"{connection.Host}:{connection.Port}/{connection.Database}"));
            checks.Add(await SchemaAsync(connection, cancellationToken));
            checks.Add(await PoolAsync(connection, cancellationToken));
            checks.Add(await AdminAsync(cancellationToken));
            checks.Add(await SignInModeAsync(cancellationToken));
            checks.Add(JwtSecret());
            checks.Add(TokenLifetime());
            checks.Add(Sharing());
            checks.AddRange(await AgentsAsync(cancellationToken));
            checks.Add(await RefusalsAsync(cancellationToken));
            checks.AddRange(await SessionsAsync(cancellationToken));
            checks.Add(await recordings.StorageAsync(cancellationToken));
            if (probeVnc)
            {
                checks.AddRange(await ProbeVncAsync(cancellationToken));
            }
        }

        return Report(checks);
    }

    private DiagnosticsReport Report(List<DiagnosticCheck> checks)
    {
        var status = checks.Any(c => c.Status == CheckStatus.Fail) ? CheckStatus.Fail
            : checks.Any(c => c.Status == CheckStatus.Warn) ? CheckStatus.Warn : CheckStatus.Ok;
        return new DiagnosticsReport(status, time.GetUtcNow(), checks);
    }

    private static async Task<DiagnosticCheck> SchemaAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        var applied = await DatabaseMigrator.AppliedVersionAsync(connection, cancellationToken);
        return applied >= DatabaseMigrator.LatestVersion
            ? DiagnosticCheck.Ok("database.schema", "The schema is at the expected migration", $"migration {applied} of {DatabaseMigrator.LatestVersion}")
            : DiagnosticCheck.Fail("database.schema", "The schema is at the expected migration", $"migration {applied}, this API needs {DatabaseMigrator.LatestVersion}",
                "Restart the API: it applies its migrations at start, under a lock, before serving requests.");
    }

    /// <summary>Connections in use on the server against its limit: when they run out, every request waits.</summary>
    private static async Task<DiagnosticCheck> PoolAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        var (used, max) = await connection.QuerySingleAsync<(long, int)>(new CommandDefinition(
            "SELECT (SELECT count(*) FROM pg_stat_activity), current_setting('max_connections')::int", cancellationToken: cancellationToken));
        var evidence = $"{used} of {max} server connections in use";
        return used >= max * 0.9
            ? DiagnosticCheck.Warn("database.pool", "Database connections are not exhausted", evidence,
                "Requests will wait for connections: look for slow queries or leaks, lower Maximum Pool Size per replica, or raise max_connections.")
            : DiagnosticCheck.Ok("database.pool", "Database connections are not exhausted", evidence);
    }

    private async Task<DiagnosticCheck> AdminAsync(CancellationToken cancellationToken)
    {
        const string id = "auth.admin";
        const string title = "The admin account exists and matches its secret";
        var admin = await users.FindByUsernameAsync(settings.AdminUsername, cancellationToken);
        if (admin is null)
        {
            return DiagnosticCheck.Fail(id, title, $"no user '{settings.AdminUsername}'",
                "Set ADMIN_PASSWORD (from the streamspace-admin-credentials secret) and restart the API: it creates the account.");
        }

        if (admin.Role != UserRoles.Admin || admin.Disabled)
        {
            return DiagnosticCheck.Fail(id, title, $"'{admin.Username}' is {(admin.Disabled ? "disabled" : "not an admin")}",
                "Restart the API with ADMIN_PASSWORD set: it restores the account's role and enables it.");
        }

        if (!string.IsNullOrEmpty(settings.AdminPassword) && !users.VerifyPassword(admin, settings.AdminPassword))
        {
            return DiagnosticCheck.Fail(id, title, $"the password of '{admin.Username}' differs from ADMIN_PASSWORD",
                "Restart the API: at start it re-syncs the admin's password with the secret.");
        }

        return DiagnosticCheck.Ok(id, title, string.IsNullOrEmpty(settings.AdminPassword)
            ? $"'{admin.Username}' exists (ADMIN_PASSWORD is not set, so it is not compared)"
            : $"'{admin.Username}' signs in with ADMIN_PASSWORD");
    }

    /// <summary>How users sign in, and, with an OpenID provider, that its discovery document and keys can be fetched.</summary>
    private async Task<DiagnosticCheck> SignInModeAsync(CancellationToken cancellationToken)
    {
        const string id = "auth.sign_in";
        const string title = "Users can sign in";
        var passwords = settings.LocalLogin ? "passwords" : $"passwords for '{settings.AdminUsername}' only (LOCAL_LOGIN=false)";
        if (!settings.OidcEnabled)
        {
            return DiagnosticCheck.Ok(id, title, $"{passwords}; no OpenID provider (OIDC_ISSUER is not set)");
        }

        var evidence = $"{passwords} and the OpenID provider {settings.OidcIssuer} (client {settings.OidcClientId})";
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(5));
            var configuration = await providerTokens.Configuration.GetConfigurationAsync(timeout.Token);
            var keys = configuration.SigningKeys.Count;
            return DiagnosticCheck.Ok(id, title, $"{evidence}: {keys} signing key{(keys == 1 ? "" : "s")}");
        }
        catch (Exception e) when (e is InvalidOperationException or IOException or HttpRequestException or OperationCanceledException)
        {
            return DiagnosticCheck.Fail(id, title, $"{evidence}: its discovery document cannot be read ({e.GetBaseException().Message})",
                "Check OIDC_ISSUER (the provider's issuer URL, whose /.well-known/openid-configuration must answer) and that the API can reach the provider.");
        }
    }

    private DiagnosticCheck JwtSecret()
    {
        var bytes = Encoding.UTF8.GetByteCount(settings.JwtSecret);
        var distinct = settings.JwtSecret.Distinct().Count();
        return bytes >= 48 && distinct >= 16
            ? DiagnosticCheck.Ok("auth.jwt_secret", "JWT_SECRET is strong", $"{bytes} bytes, {distinct} distinct characters")
            : DiagnosticCheck.Warn("auth.jwt_secret", "JWT_SECRET is strong", $"{bytes} bytes, {distinct} distinct characters",
                "Use a random secret of at least 48 bytes, e.g. `openssl rand -base64 48`, in the streamspace-secrets secret.");
    }

    /// <summary>Shown either way: whether owners can share sessions is the operator's choice, not a fault.</summary>
    private DiagnosticCheck Sharing() => DiagnosticCheck.Ok("sharing.enabled", "Sharing sessions (SHARING)", settings.Sharing == SharingSwitch.Enabled
        ? "SHARING is enabled; a template's own switch can still turn it off for its sessions"
        : "SHARING is disabled: no session can be shared and no new viewer joins an existing share");

    private DiagnosticCheck TokenLifetime()
    {
        var lifetime = settings.JwtLifetime;
        var evidence = $"JWT_LIFETIME is {StreamSpace.Settings.Duration.Format(lifetime)}, clock skew allowed {TokenIssuer.ClockSkew.TotalSeconds:0}s";
        return lifetime < TimeSpan.FromMinutes(5) || lifetime > TimeSpan.FromDays(1)
            ? DiagnosticCheck.Warn("auth.token_lifetime", "The token lifetime is sane", evidence,
                "Use between 5m and 24h: shorter signs users out mid-work, longer keeps stolen tokens useful.")
            : DiagnosticCheck.Ok("auth.token_lifetime", "The token lifetime is sane", evidence);
    }

    private async Task<IEnumerable<DiagnosticCheck>> AgentsAsync(CancellationToken cancellationToken)
    {
        var registered = await agents.ListAsync(cancellationToken);
        if (registered.Count == 0)
        {
            return [DiagnosticCheck.Warn("agents.heartbeat", "Agents send heartbeats", "no agent is registered",
                "Register an agent with POST /api/v1/agents (or provision one with PROVISIONED_AGENT_ID/KEY) and start it.")];
        }

        var now = time.GetUtcNow();
        var checks = new List<DiagnosticCheck>();
        foreach (var agent in registered.Where(a => !a.Revoked))
        {
            var interval = TimeSpan.FromSeconds(agent.HeartbeatIntervalSeconds);
            var age = agent.LastHeartbeat is { } beat ? now - new DateTimeOffset(beat, TimeSpan.Zero) : (TimeSpan?)null;
            var evidence = age is null ? "never connected" : $"last heartbeat {age.Value.TotalSeconds:0}s ago, interval {interval.TotalSeconds:0}s";
            // As recorded, not "connected here": with several replicas the agent may be held by another one.
            var online = agent.Status == "online" && age < interval * settings.AgentMissedHeartbeats;
            checks.Add(online
                ? DiagnosticCheck.Ok($"agents.heartbeat:{agent.Id}", $"Agent {agent.Id} sends heartbeats", evidence)
                : DiagnosticCheck.Fail($"agents.heartbeat:{agent.Id}", $"Agent {agent.Id} sends heartbeats", evidence,
                    "Check the agent runs and its logs for 'Failed to connect to Control Plane': CONTROL_PLANE_URL must be ws://<api>:8000/agent/ws, "
                    + "and no NetworkPolicy may block agent → api:8000. Keep HEARTBEAT_INTERVAL at 30s."));

            if (agent.ClockSkewMs is { } skewMs && Math.Abs(skewMs) > MaxClockSkew.TotalMilliseconds)
            {
                checks.Add(DiagnosticCheck.Warn($"agents.clock_skew:{agent.Id}", $"Agent {agent.Id}'s clock agrees with the control plane",
                    $"the agent's clock is {skewMs / 1000.0:0.#}s {(skewMs > 0 ? "ahead" : "behind")}",
                    "Synchronise the node clocks (NTP). Skew makes tokens look expired at once or not yet valid."));
            }

            if (agent.ProtocolVersion is { } version && version != AgentProtocol.Version)
            {
                checks.Add(DiagnosticCheck.Warn($"agents.protocol:{agent.Id}", $"Agent {agent.Id} speaks the current protocol",
                    $"protocol {version}, the control plane speaks {AgentProtocol.Version}" + (version == AgentProtocol.MuxVersion ? "; its viewers ride the control socket's mux" : ""),
                    "Upgrade the agent to this release, and leave AGENT_DATA_PATH unset (data) unless a proxy refuses its data connections."));
            }

            if (online)
            {
                checks.Add(ControlPlaneUrl(agent));
                checks.AddRange(ReportedChecks(agent));
            }
        }

        return checks;
    }

    /// <summary>
    /// The CONTROL_PLANE_URL the agent dials against where the API saw it arrive and what PUBLIC_URL advertises.
    /// It works (the agent is online); what can still be wrong is that it carries the agent's key in plain text to a
    /// host that is served over TLS.
    /// </summary>
    private DiagnosticCheck ControlPlaneUrl(AgentHealth agent)
    {
        var id = $"network.control_plane_url:{agent.Id}";
        var title = $"Agent {agent.Id}'s CONTROL_PLANE_URL matches what the API advertises";
        var advertised = settings.PublicAgentHubUrl;
        var evidence = $"the agent dials {agent.ControlPlaneUrl ?? "(not reported: an older agent)"}; the API saw it arrive as {agent.ReachedUrl ?? "unknown"}; "
            + (advertised is null ? "PUBLIC_URL is not set" : $"PUBLIC_URL advertises {advertised}");
        if (advertised is not null && Uri.TryCreate(agent.ControlPlaneUrl, UriKind.Absolute, out var dialled)
            && dialled.Scheme == "ws" && advertised.Scheme == "wss" && string.Equals(dialled.Host, advertised.Host, StringComparison.OrdinalIgnoreCase))
        {
            return DiagnosticCheck.Fail(id, title, evidence,
                $"The agent sends its key unencrypted to the public host: set CONTROL_PLANE_URL to {advertised} (or to the in-cluster ws://<api service>:8000/agent/ws).");
        }

        return DiagnosticCheck.Ok(id, title, evidence);
    }

    /// <summary>What the agent found about its own platform (RBAC, storage, images, local programs), under the agent's name.</summary>
    private static IEnumerable<DiagnosticCheck> ReportedChecks(AgentHealth agent) =>
        agent.ReportedChecks()
            .Select(check => new DiagnosticCheck($"{check.Id}:{agent.Id}", $"Agent {agent.Id}: {check.Title}",
                check.Status is CheckStatus.Ok or CheckStatus.Warn or CheckStatus.Fail ? check.Status : CheckStatus.Warn, check.Evidence, check.Fix));

    private async Task<DiagnosticCheck> RefusalsAsync(CancellationToken cancellationToken)
    {
        var recent = await agents.RecentRefusalsAsync(TimeSpan.FromMinutes(15), cancellationToken);
        return recent.Count == 0
            ? DiagnosticCheck.Ok("agents.refused", "No agent is being refused", "no refused agent connection in the last 15 minutes")
            : DiagnosticCheck.Warn("agents.refused", "No agent is being refused",
                string.Join("; ", recent.Select(r => $"{r.AgentId}: {r.Count} refused, last {(time.GetUtcNow() - r.LastAt).TotalSeconds:0}s ago: {r.Reason}")),
                "Give the agent the key from POST /api/v1/agents (AGENT_KEY) for its AGENT_ID, re-register a revoked agent, or stop the stray agent.");
    }

    private async Task<IEnumerable<DiagnosticCheck>> SessionsAsync(CancellationToken cancellationToken)
    {
        var stuck = await sessions.StuckAsync(TimeSpan.FromSeconds(Math.Min(settings.CommandTimeout.TotalSeconds, 60)), cancellationToken);
        var commands = await agents.UnansweredCommandsAsync(cancellationToken);
        var online = (await agents.ListAsync(cancellationToken)).Where(a => a.Status == "online" && !a.Revoked).Select(a => a.Id).ToHashSet();
        var orphaned = (await sessions.ActiveAsync(cancellationToken)).Where(s => !online.Contains(s.AgentId)).ToList();

        return
        [
            stuck.Count == 0
                ? DiagnosticCheck.Ok("sessions.stuck", "No session is stuck starting", "no pending or starting session older than a minute")
                : DiagnosticCheck.Fail("sessions.stuck", "No session is stuck starting",
                    string.Join("; ", stuck.Select(s => $"{s.Id} {s.State} for {s.Seconds:0}s on {s.AgentId ?? "no agent"}{(s.Reason is null ? "" : $": {s.Reason}")}")),
                    "Check the agent is online (GET /api/v1/agents) and its logs for the session; for Kubernetes, the reason names image pulls, resources or volumes."),
            commands.Count == 0
                ? DiagnosticCheck.Ok("sessions.commands", "Agents answer their commands", "no command waits for an answer longer than 30s")
                : DiagnosticCheck.Warn("sessions.commands", "Agents answer their commands",
                    string.Join("; ", commands.Select(c => $"{c.CommandType} {c.Id} to {c.AgentId}, sent {c.Seconds:0}s ago")),
                    "The agent received the command but has not acknowledged it: check its logs; it fails at COMMAND_TIMEOUT."),
            orphaned.Count == 0
                ? DiagnosticCheck.Ok("sessions.agents", "Active sessions have an online agent", "every active session's agent is connected")
                : DiagnosticCheck.Fail("sessions.agents", "Active sessions have an online agent",
                    string.Join("; ", orphaned.Select(s => $"{s.Id} on {s.AgentId} (offline)")),
                    "Bring the agent back: it re-reports its sessions on reconnect, and sessions it no longer runs are marked failed."),
        ];
    }

    /// <summary>For each running session, asks its agent to open a tunnel: the agent dials the VNC server and authenticates.</summary>
    private async Task<IEnumerable<DiagnosticCheck>> ProbeVncAsync(CancellationToken cancellationToken)
    {
        var running = await sessions.RunningAsync(cancellationToken);
        var checks = new List<DiagnosticCheck>();
        foreach (var (id, agentId) in running)
        {
            var title = $"Session {id}'s VNC server answers";
            if (agents.Socket(agentId) is not { } agent)
            {
                // Held by another replica (or offline, which sessions.agents reports): the probe runs only through a
                // socket held here, so the replica that holds the agent probes its sessions when it answers.
                continue;
            }

            var (stream, failure) = await agent.OpenTunnelAsync(id, TimeSpan.FromSeconds(5), cancellationToken);
            if (stream is not null)
            {
                await agent.CloseTunnelAsync(stream.Id, "diagnostics probe done");
                checks.Add(DiagnosticCheck.Ok($"sessions.vnc:{id}", title, $"agent {agentId} reached it and authenticated"));
            }
            else
            {
                checks.Add(DiagnosticCheck.Fail($"sessions.vnc:{id}", title, failure ?? "no answer",
                    "The session's VNC server does not answer: check the session's logs (X server failed, display in use), or stop and relaunch it."));
            }
        }

        return checks;
    }
}
