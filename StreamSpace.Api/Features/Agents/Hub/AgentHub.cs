using System.Collections.Concurrent;
using System.Net.WebSockets;
using Microsoft.Net.Http.Headers;
using StreamSpace.Api.Features.Agents.Commands;
using StreamSpace.Api.Features.Sessions;
using StreamSpace.Contracts;
using Npgsql;

namespace StreamSpace.Api.Features.Agents.Hub;

/// <summary>
/// The control plane's end of <c>/agent/ws</c>: authenticates agents before the upgrade, keeps one live
/// connection per agent id, records hello and heartbeats, and routes command answers and session reports.
/// </summary>
public sealed class AgentHub(
    AgentStore store,
    AgentCommandQueue commands,
    NpgsqlDataSource dataSource,
    Diagnostics.RefusedAgentLog refusals,
    TimeProvider time,
    AgentHubMetrics metrics,
    Infrastructure.FailureWindows failures,
    ApiSettings settings,
    ILogger<AgentHub> logger)
{
    private static readonly TimeSpan HelloTimeout = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Handshakes (authentication, hello and the first command delivery) doing database work at once. After an API
    /// restart thousands of agents reconnect within seconds; unbounded, their handshakes took every pooled connection,
    /// so heartbeats, users' requests and /health waited seconds for one. Queued here, they wait in memory instead.
    /// </summary>
    private const int ConcurrentHandshakes = 16;

    private readonly Infrastructure.FailureLimit refusedPerAddress = new("agent.address", settings.AgentAuthFailuresPerMinute, TimeSpan.FromMinutes(1));
    private readonly SemaphoreSlim handshakes = new(ConcurrentHandshakes, ConcurrentHandshakes);
    private readonly ConcurrentDictionary<string, AgentConnection> live = new();

    public IEnumerable<AgentConnection> Connections => live.Values;

    public bool IsConnected(string agentId) => live.ContainsKey(agentId);

    public AgentConnection? Find(string agentId) => live.TryGetValue(agentId, out var connection) ? connection : null;

    public async Task AcceptAsync(HttpContext context)
    {
        if (!context.WebSockets.IsWebSocketRequest)
        {
            await TypedResults.Problem(title: "This is the agent hub.", detail: "Agents connect here with a WebSocket upgrade.",
                statusCode: StatusCodes.Status400BadRequest).ExecuteAsync(context);
            return;
        }

        // Before any database work: a flood of bad keys from one address must not take the handshake slots and the
        // pool that real agents' reconnects need. Only refusals count, so 10,000 agents behind one address reconnecting
        // after a restart are never limited.
        var address = Infrastructure.FailureWindows.ClientSubject(context.Connection.RemoteIpAddress);
        if (failures.Check(refusedPerAddress, address) is { Limited: true } limited)
        {
            if (limited.FirstRefusal)
            {
                logger.LogWarning("Refusing agent connections from {Remote} for {Seconds} s: {Failures} refused in a minute",
                    address, (int)Math.Ceiling(limited.RetryAfter.TotalSeconds), refusedPerAddress.Failures);
            }

            await Auth.AuthExtensions.TooManyAttempts("Too many refused agent connections from this address.", limited.RetryAfter).ExecuteAsync(context);
            return;
        }

        var agentId = context.Request.Headers[AgentProtocol.AgentIdHeader].ToString();
        var authorization = context.Request.Headers[HeaderNames.Authorization].ToString();
        var key = authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) ? authorization["Bearer ".Length..].Trim() : "";
        if (agentId.Length == 0 || key.Length == 0)
        {
            failures.Fail(refusedPerAddress, address);
            await Refuse(context, $"Missing agent credentials: send {AgentProtocol.AgentIdHeader} and Authorization: Bearer <AGENT_KEY>.");
            return;
        }

        var keyHash = AgentKeys.Hash(key);
        switch (await HandshakeStepAsync(() => store.AuthenticateAsync(agentId, keyHash, context.RequestAborted), context.RequestAborted))
        {
            case AgentAuthentication.Rejected:
                logger.LogWarning("Refused agent connection from {Remote}: unknown agent id {AgentId} or wrong key", context.Connection.RemoteIpAddress, agentId);
                refusals.Record(agentId, "unknown agent id or wrong key (401)");
                failures.Fail(refusedPerAddress, address);
                await Refuse(context, "Unknown agent id or wrong key.");
                return;
            case AgentAuthentication.Revoked:
                logger.LogWarning("Refused agent {AgentId} from {Remote}: its credential is revoked", agentId, context.Connection.RemoteIpAddress);
                refusals.Record(agentId, "its credential is revoked (401)");
                failures.Fail(refusedPerAddress, address);
                await Refuse(context, "This agent's credential is revoked; register it again with POST /api/v1/agents.");
                return;
        }

        using var socket = await context.WebSockets.AcceptWebSocketAsync();
        var connection = new AgentConnection(agentId, keyHash, socket, time);
        try
        {
            await RunAsync(connection, ReachedUrl(context.Request), context.RequestAborted);
        }
        finally
        {
            if (live.TryRemove(new KeyValuePair<string, AgentConnection>(agentId, connection)))
            {
                await store.MarkOfflineAsync(agentId, CancellationToken.None);
                logger.LogInformation("Agent {AgentId} is offline: its connection closed", agentId);
            }
        }
    }

    /// <summary>Sends the agent its new commands now, if it is connected here; otherwise they wait for its next connect.</summary>
    public async Task DeliverCommandsAsync(string agentId, CancellationToken cancellationToken)
    {
        if (live.TryGetValue(agentId, out var connection))
        {
            await commands.DeliverAsync(connection, includeUnfinished: false, cancellationToken);
        }
    }

    /// <summary>Closes the agent's live connection, e.g. because its credential was revoked.</summary>
    public async Task DisconnectAsync(string agentId, WebSocketCloseStatus status, string reason)
    {
        if (live.TryRemove(agentId, out var connection))
        {
            await store.MarkOfflineAsync(agentId, CancellationToken.None);
            await connection.CloseAsync(status, reason);
            logger.LogInformation("Disconnected agent {AgentId}: {Reason}", agentId, reason);
        }
    }

    private async Task ReplaceAsync(string agentId, AgentConnection connection)
    {
        AgentConnection? previous = null;
        live.AddOrUpdate(agentId, connection, (_, old) =>
        {
            previous = old;
            return connection;
        });

        if (previous is not null && previous != connection)
        {
            logger.LogWarning("Agent {AgentId} connected again; closing its previous connection", agentId);
            await previous.CloseAsync(AgentCloseCodes.Replaced, "replaced by a newer connection of the same agent id");
        }
    }

    /// <summary>The hub's URL as the agent's request arrived here; behind a proxy, the proxy's view of it.</summary>
    private static string ReachedUrl(HttpRequest request) =>
        $"{(request.IsHttps ? "wss" : "ws")}://{request.Host}{request.PathBase}{request.Path}";

    private async Task RunAsync(AgentConnection connection, string reachedUrl, CancellationToken aborted)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(aborted);
        var writer = connection.RunWriterAsync(stop.Token);
        try
        {
            using (var helloWait = CancellationTokenSource.CreateLinkedTokenSource(stop.Token))
            {
                helloWait.CancelAfter(HelloTimeout);
                if (await connection.ReceiveAsync(helloWait.Token) is not HelloMessage hello)
                {
                    throw new ProtocolViolationException("the first frame must be hello");
                }

                if (!AgentProtocol.SupportedVersions.Contains(hello.ProtocolVersion))
                {
                    var supported = string.Join(", ", AgentProtocol.SupportedVersions);
                    logger.LogWarning("Refused agent {AgentId}: protocol version {Version} is not supported (supported: {Supported})",
                        connection.AgentId, hello.ProtocolVersion, supported);
                    refusals.Record(connection.AgentId, $"protocol version {hello.ProtocolVersion} is not supported (supported: {supported})");
                    await connection.CloseAsync(AgentCloseCodes.UnsupportedProtocol,
                        $"protocol version {hello.ProtocolVersion} is not supported; supported: {supported}");
                    return;
                }

                // Only a valid hello takes over the agent id, so a probe (`doctor --agent`) never displaces the agent.
                // It takes over before the credential is checked again: a revocation that commits after that check
                // finds this connection live (AgentRevocations), one that commits before it fails the check.
                var accepted = await HandshakeStepAsync(async () =>
                {
                    await ReplaceAsync(connection.AgentId, connection);
                    if (!await AcceptHelloAsync(connection, hello, reachedUrl, stop.Token))
                    {
                        return false;
                    }

                    await commands.DeliverAsync(connection, includeUnfinished: true, stop.Token);
                    return true;
                }, stop.Token);
                if (!accepted)
                {
                    await CloseRevokedAsync(connection);
                    return;
                }
            }

            while (await connection.ReceiveAsync(stop.Token) is { } message)
            {
                if (!await HandleAsync(connection, message, stop.Token))
                {
                    await CloseRevokedAsync(connection);
                    return;
                }
            }
        }
        catch (ProtocolViolationException e)
        {
            logger.LogWarning("Agent {AgentId} broke the protocol ({Reason}); closing its connection", connection.AgentId, e.Message);
            await connection.CloseAsync(AgentCloseCodes.MalformedFrame, e.Message);
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException)
        {
            logger.LogInformation("Agent {AgentId} connection ended: {Reason}", connection.AgentId, e.Message);
        }
        finally
        {
            connection.CloseTunnels("the agent's connection closed");
            await stop.CancelAsync();
            try
            {
                await writer;
            }
            catch (Exception e) when (e is OperationCanceledException or WebSocketException or ObjectDisposedException)
            {
                // The socket is gone; nothing is left to send.
            }
        }
    }

    /// <summary>Records the hello and answers welcome; false when the credential was revoked or replaced since the upgrade.</summary>
    private async Task<bool> AcceptHelloAsync(AgentConnection connection, HelloMessage hello, string reachedUrl, CancellationToken cancellationToken)
    {
        var received = time.GetTimestamp();
        connection.HeartbeatInterval = TimeSpan.FromSeconds(Math.Max(1, hello.HeartbeatIntervalSeconds));
        if (!await store.MarkOnlineAsync(connection.AgentId, connection.KeyHash, hello, reachedUrl, cancellationToken))
        {
            return false;
        }

        refusals.Forget(connection.AgentId);
        await ApplyReportedSessionsAsync(connection.AgentId, hello.Sessions, cancellationToken);
        await FailLostSessionsAsync(connection.AgentId, hello, cancellationToken);
        var unowned = await UnownedSessionsAsync(connection.AgentId, hello.Sessions, cancellationToken);
        await connection.SendAsync(new WelcomeMessage(AgentProtocol.Version, time.GetUtcNow(), unowned), cancellationToken);
        metrics.HelloHandled(time.GetElapsedTime(received));
        logger.LogInformation("Agent {AgentId} is online: platform {Platform}, region {Region}, version {Version}, {Sessions} running sessions, heartbeat every {Interval}s",
            connection.AgentId, hello.Platform, hello.Region, hello.Version, hello.Sessions.Count, hello.HeartbeatIntervalSeconds);
        return true;
    }

    /// <summary>Handles one message; false when a heartbeat finds the credential revoked or replaced.</summary>
    private async Task<bool> HandleAsync(AgentConnection connection, AgentMessage message, CancellationToken cancellationToken)
    {
        switch (message)
        {
            case HeartbeatMessage heartbeat:
                var received = time.GetTimestamp();
                if (!await store.RecordHeartbeatAsync(connection.AgentId, connection.KeyHash, heartbeat, heartbeat.SentAt - time.GetUtcNow(), cancellationToken))
                {
                    return false;
                }

                await ApplyReportedSessionsAsync(connection.AgentId, heartbeat.Sessions, cancellationToken);
                metrics.HeartbeatHandled(time.GetElapsedTime(received));
                logger.LogDebug("Heartbeat from agent {AgentId}", connection.AgentId);
                break;
            case CommandAckMessage ack:
                await commands.MarkAckedAsync(connection.AgentId, ack.CommandId, cancellationToken);
                break;
            case CommandResultMessage result:
                await commands.CompleteAsync(connection.AgentId, result, cancellationToken);
                break;
            case AgentChecksMessage report:
                await store.RecordChecksAsync(connection.AgentId, report.Checks, cancellationToken);
                break;
            case SessionStateMessage state:
                await ApplyReportedSessionsAsync(connection.AgentId, [state.Session], cancellationToken);
                break;
            case TunnelOpenedMessage or TunnelClosedMessage:
                connection.OnTunnelMessage(message);
                break;
            default:
                throw new ProtocolViolationException($"agents may not send {message.GetType().Name}");
        }

        return true;
    }

    /// <summary>
    /// Closes this connection because its credential is no longer valid. Only this connection: a newer one of the
    /// same id, with a new key, stays.
    /// </summary>
    private async Task CloseRevokedAsync(AgentConnection connection)
    {
        logger.LogWarning("Closing agent {AgentId}'s connection: its credential was revoked or replaced", connection.AgentId);
        refusals.Record(connection.AgentId, "its credential was revoked or replaced while it was connected");
        // The connection's own end (AcceptAsync's finally) removes it from the live set and marks the agent offline.
        await connection.CloseAsync(AgentCloseCodes.Revoked, "the agent's credential was revoked");
    }

    private async Task ApplyReportedSessionsAsync(string agentId, IReadOnlyList<ReportedSession> sessions, CancellationToken cancellationToken)
    {
        if (sessions.Count == 0)
        {
            return;
        }

        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        foreach (var session in sessions)
        {
            await SessionStateWriter.ApplyAsync(connection, transaction, agentId, session, cancellationToken);
        }

        await transaction.CommitAsync(cancellationToken);
    }

    /// <summary>
    /// Reconciles after a restart on either side: a session we believe runs on this agent, but which the agent
    /// does not report, is gone. (Pending and starting sessions are not: their start command will be re-sent.)
    /// </summary>
    private async Task FailLostSessionsAsync(string agentId, HelloMessage hello, CancellationToken cancellationToken)
    {
        // Users read this reason in the UI; on Kubernetes a session is its pod.
        var reason = hello.Platform == "kubernetes" ? "session pod missing" : "session process missing: the agent restarted and no longer runs it";
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        var lost = await Dapper.SqlMapper.QueryAsync<string>(connection, new Dapper.CommandDefinition(
            "SELECT id FROM sessions WHERE agent_id = @agentId AND state IN ('running', 'hibernated') AND NOT (id = ANY(@reported))",
            new { agentId, reported = hello.Sessions.Select(s => s.SessionId).ToArray() }, transaction, cancellationToken: cancellationToken));
        foreach (var sessionId in lost)
        {
            logger.LogWarning("Agent {AgentId} no longer runs session {SessionId}; marking it failed", agentId, sessionId);
            await SessionStateWriter.ApplyAsync(connection, transaction, agentId,
                new ReportedSession(sessionId, SessionState.Failed, reason), cancellationToken);
        }

        await transaction.CommitAsync(cancellationToken);
    }

    /// <summary>
    /// The reported sessions that are not this agent's to run: unknown here, ended, or placed on another agent.
    /// The agent stops them after its grace period (ORPHAN_GRACE_PERIOD).
    /// </summary>
    private async Task<IReadOnlyList<string>> UnownedSessionsAsync(string agentId, IReadOnlyList<ReportedSession> reported, CancellationToken cancellationToken)
    {
        // What the agent itself reports as over needs no stopping.
        var live = reported.Where(s => s.State is not (SessionState.Stopped or SessionState.Failed)).Select(s => s.SessionId).ToArray();
        if (live.Length == 0)
        {
            return [];
        }

        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        var owned = await Dapper.SqlMapper.QueryAsync<string>(connection, new Dapper.CommandDefinition(
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

    private async Task<T> HandshakeStepAsync<T>(Func<Task<T>> step, CancellationToken cancellationToken)
    {
        await handshakes.WaitAsync(cancellationToken);
        try
        {
            return await step();
        }
        finally
        {
            handshakes.Release();
        }
    }

    private static Task Refuse(HttpContext context, string detail) =>
        TypedResults.Problem(title: "Agent authentication failed.", detail: detail, statusCode: StatusCodes.Status401Unauthorized).ExecuteAsync(context);
}
