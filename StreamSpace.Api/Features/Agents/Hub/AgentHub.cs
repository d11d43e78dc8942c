using System.Collections.Concurrent;
using System.Net.WebSockets;
using System.Threading.Channels;
using Dapper;
using Npgsql;
using StreamSpace.Api.Features.Agents.Commands;
using StreamSpace.Api.Features.Recordings;
using StreamSpace.Api.Features.Replicas;
using StreamSpace.Api.Features.Sessions;
using StreamSpace.Contracts;

namespace StreamSpace.Api.Features.Agents.Hub;

/// <summary>
/// The control plane's end of <c>/agent/ws</c>: keeps one live connection per agent id, records hello and
/// heartbeats, and routes command answers and session reports. <see cref="AgentAdmission"/> authenticates agents
/// before the upgrade.
/// </summary>
public sealed class AgentHub(
    AgentAdmission admission,
    AgentStore store,
    AgentCommandQueue commands,
    IPlacedSessions sessions,
    IAgentRecordings recordings,
    RefusedAgentLog refusals,
    TimeProvider time,
    AgentHubMetrics metrics,
    IReplicaDrain drain,
    NpgsqlDataSource dataSource,
    ILogger<AgentHub> logger)
{
    /// <summary>NOTIFYed with the agent id and connection id at each accepted hello, so another replica's older connection of that agent closes.</summary>
    public const string ConnectionsChannel = "agent_connections";

    private static readonly TimeSpan HelloTimeout = TimeSpan.FromSeconds(10);
    /// <summary>
    /// How long a stopping replica waits for its agents' hellos elsewhere before it lets the process exit. The wait ends
    /// as soon as all have moved (about a second); the limit only matters on a loaded node, where 3 s proved too short,
    /// and it stays well inside the pod's 30 s grace period with the drain delay and the viewers' close.
    /// </summary>
    private static readonly TimeSpan MoveTimeout = TimeSpan.FromSeconds(10);

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

        if (drain.IsDraining)
        {
            // Before any database work: the balancer sends the agent's retry to another replica.
            await TypedResults.Problem(title: "This API replica is stopping.", detail: "Connect again; the balancer sends you to another replica.",
                statusCode: StatusCodes.Status503ServiceUnavailable).ExecuteAsync(context);
            return;
        }

        if (await admission.AdmitAsync(context) is not { } admitted)
        {
            return;
        }

        using var socket = await context.WebSockets.AcceptWebSocketAsync();
        var connection = new AgentConnection(admitted.AgentId, admitted.KeyHash, socket, time);
        try
        {
            await RunAsync(connection, ReachedUrl(context.Request), context.RequestAborted);
        }
        finally
        {
            if (live.TryRemove(new KeyValuePair<string, AgentConnection>(connection.AgentId, connection)))
            {
                await store.MarkOfflineAsync(connection.AgentId, connection.Id, CancellationToken.None);
                logger.LogInformation("Agent {AgentId} is offline: its connection closed", connection.AgentId);
            }
        }
    }

    /// <summary>
    /// Sends the agent its new commands now, if it is connected here; otherwise nothing: the replica holding it sends
    /// them on their NOTIFY (<see cref="AgentCommandQueue.NotifyChannel"/>), or at the latest on its sweep.
    /// </summary>
    public async Task DeliverCommandsAsync(string agentId, CancellationToken cancellationToken)
    {
        if (!live.TryGetValue(agentId, out var connection))
        {
            return;
        }

        // A half-open agent stops reading and its outbox fills: the caller (a request, the sweep for every agent) must
        // not wait for its liveness check. What was not sent stays pending in the same transaction and goes again.
        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        bounded.CancelAfter(DeliveryTimeout);
        try
        {
            await DeliverAsync(connection, includeUnfinished: false, bounded.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            logger.LogWarning("Agent {AgentId} took no commands within {Seconds}s (its connection may be half-open); they stay pending",
                agentId, DeliveryTimeout.TotalSeconds);
        }
    }

    private static readonly TimeSpan DeliveryTimeout = TimeSpan.FromSeconds(5);

    /// <summary>One delivery to an agent at a time, so a reconnect's re-send and a new command's send do not race.</summary>
    private async Task DeliverAsync(AgentConnection connection, bool includeUnfinished, CancellationToken cancellationToken)
    {
        await connection.DeliveryLock.WaitAsync(cancellationToken);
        try
        {
            await commands.DeliverAsync(connection.AgentId, connection.Id, connection.Socket.SendAsync, includeUnfinished, cancellationToken);
        }
        catch (ChannelClosedException)
        {
            // The connection is closing. What it did not send stays unanswered and goes again when the agent reconnects.
            logger.LogInformation("Agent {AgentId}'s connection closed during a delivery; its commands go again when it reconnects", connection.AgentId);
        }
        finally
        {
            connection.DeliveryLock.Release();
        }
    }

    /// <summary>Closes the agent's live connection, e.g. because its credential was revoked.</summary>
    public async Task DisconnectAsync(string agentId, WebSocketCloseStatus status, string reason)
    {
        if (live.TryGetValue(agentId, out var connection))
        {
            await DisconnectAsync(connection, status, reason);
        }
    }

    /// <summary>Closes this connection of the agent, if it is still the live one: a newer connection of the agent is left alone.</summary>
    public async Task DisconnectAsync(AgentConnection connection, WebSocketCloseStatus status, string reason)
    {
        if (live.TryRemove(new KeyValuePair<string, AgentConnection>(connection.AgentId, connection)))
        {
            await store.MarkOfflineAsync(connection.AgentId, connection.Id, CancellationToken.None);
            await connection.Socket.CloseAsync(status, reason);
            logger.LogInformation("Disconnected agent {AgentId}: {Reason}", connection.AgentId, reason);
        }
    }

    /// <summary>
    /// A replica accepted a hello of the agent: a connection of it here that is no longer the agent's current one
    /// (half-open, or left by an agent that moved) closes with 4001. The database decides, not the notification: one
    /// delayed past a newer hello here must not close that newer connection. A connection still in its handshake is
    /// left alone, since its own hello supersedes the notified one. Nothing goes offline: the row names the new one.
    /// </summary>
    public async Task CloseIfReplacedAsync(string agentId, Guid notifiedConnectionId)
    {
        if (live.TryGetValue(agentId, out var connection) && connection.Id != notifiedConnectionId && connection.Welcomed
            && !await store.IsCurrentAsync(agentId, connection.Id, CancellationToken.None)
            && live.TryRemove(new KeyValuePair<string, AgentConnection>(agentId, connection)))
        {
            logger.LogInformation("Agent {AgentId} connected to another replica; closing its connection here", agentId);
            await connection.Socket.CloseAsync(AgentCloseCodes.Replaced, "replaced by a newer connection of the same agent id");
        }
    }

    /// <summary>Sends a message another replica relayed, if <paramref name="connectionId"/> is the agent's connection here; false otherwise.</summary>
    public async Task<bool> SendIfHeldAsync(string agentId, Guid connectionId, AgentMessage message, CancellationToken cancellationToken)
    {
        if (!live.TryGetValue(agentId, out var connection) || connection.Id != connectionId)
        {
            return false;
        }

        await connection.Socket.SendAsync(message, cancellationToken);
        return true;
    }

    /// <summary>
    /// The hub's part of a graceful stop: closes every agent with 4005 (reconnect now, elsewhere) and waits until
    /// their hellos on other replicas have moved the agents' rows away from these connections, or
    /// <see cref="MoveTimeout"/>. The closed connections do not mark their agents offline: the agents are moving.
    /// </summary>
    public async Task MoveAgentsAsync(CancellationToken cancellationToken)
    {
        var moving = new List<AgentConnection>();
        foreach (var connection in live.Values)
        {
            if (live.TryRemove(new KeyValuePair<string, AgentConnection>(connection.AgentId, connection)))
            {
                moving.Add(connection);
            }
        }

        if (moving.Count == 0)
        {
            return;
        }

        logger.LogInformation("Moving {Count} agents to other replicas (close code 4005)", moving.Count);
        await Task.WhenAll(moving.Select(c => c.Socket.CloseAsync(AgentCloseCodes.ReplicaStopping, "this API replica is stopping; connect again")));
        var deadline = time.GetTimestamp();
        var ids = moving.Select(c => c.Id).ToArray();
        while (time.GetElapsedTime(deadline) < MoveTimeout)
        {
            await using (var db = await dataSource.OpenConnectionAsync(cancellationToken))
            {
                var stayed = await db.ExecuteScalarAsync<int>(new CommandDefinition(
                    "SELECT count(*) FROM agents WHERE connection_id = ANY(@ids)", new { ids }, cancellationToken: cancellationToken));
                if (stayed == 0)
                {
                    logger.LogInformation("All {Count} agents said hello elsewhere", moving.Count);
                    return;
                }
            }

            await Task.Delay(100, cancellationToken);
        }

        logger.LogWarning("Not every agent said hello elsewhere within {Seconds}s; stopping all the same", MoveTimeout.TotalSeconds);
    }

    /// <summary>
    /// The hub's part of stopping the only replica: closes every agent with 1001, so each reconnects with its usual
    /// backoff until a control plane is back. The connections end as lost ones do, marking their agents offline.
    /// </summary>
    public async Task CloseAgentsAsync()
    {
        var connections = live.Values.ToList();
        if (connections.Count == 0)
        {
            return;
        }

        logger.LogInformation("Closing {Count} agents: no other replica is alive to take them", connections.Count);
        await Task.WhenAll(connections.Select(c => c.Socket.CloseAsync(WebSocketCloseStatus.EndpointUnavailable, "the control plane is stopping")));
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
            await previous.Socket.CloseAsync(AgentCloseCodes.Replaced, "replaced by a newer connection of the same agent id");
        }
    }

    /// <summary>The hub's URL as the agent's request arrived here; behind a proxy, the proxy's view of it.</summary>
    private static string ReachedUrl(HttpRequest request) =>
        $"{(request.IsHttps ? "wss" : "ws")}://{request.Host}{request.PathBase}{request.Path}";

    private async Task RunAsync(AgentConnection connection, string reachedUrl, CancellationToken aborted)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(aborted);
        var writer = connection.Socket.RunWriterAsync(stop.Token);
        try
        {
            using (var helloWait = CancellationTokenSource.CreateLinkedTokenSource(stop.Token))
            {
                helloWait.CancelAfter(HelloTimeout);
                if (await connection.Socket.ReceiveAsync(helloWait.Token) is not HelloMessage hello)
                {
                    throw new ProtocolViolationException("the first frame must be hello");
                }

                if (!AgentProtocol.SupportedVersions.Contains(hello.ProtocolVersion))
                {
                    var supported = string.Join(", ", AgentProtocol.SupportedVersions);
                    logger.LogWarning("Refused agent {AgentId}: protocol version {Version} is not supported (supported: {Supported})",
                        connection.AgentId, hello.ProtocolVersion, supported);
                    await refusals.RecordAsync(connection.AgentId, $"protocol version {hello.ProtocolVersion} is not supported (supported: {supported})", stop.Token);
                    await connection.Socket.CloseAsync(AgentCloseCodes.UnsupportedProtocol,
                        $"protocol version {hello.ProtocolVersion} is not supported; supported: {supported}");
                    return;
                }

                // Only a valid hello takes over the agent id, so a probe (`doctor --agent`) never displaces the agent.
                // It takes over before the credential is checked again: a revocation that commits after that check
                // finds this connection live (AgentRevocations), one that commits before it fails the check.
                var accepted = await admission.HandshakeStepAsync(async () =>
                {
                    await ReplaceAsync(connection.AgentId, connection);
                    if (!await AcceptHelloAsync(connection, hello, reachedUrl, stop.Token))
                    {
                        return false;
                    }

                    await DeliverAsync(connection, includeUnfinished: true, stop.Token);
                    return true;
                }, stop.Token);
                if (!accepted)
                {
                    await CloseRevokedAsync(connection);
                    return;
                }

                await ResumeRecordingsAsync(connection, hello.ProtocolVersion, stop.Token);
            }

            // Different sessions' messages are handled in parallel, each session's in order (AgentMessageLanes).
            var lanes = new AgentMessageLanes((message, ct) => HandleAsync(connection, message, ct), () => CloseRevokedAsync(connection), stop);
            try
            {
                while (await connection.Socket.ReceiveAsync(stop.Token) is { } message)
                {
                    await lanes.PostAsync(message, stop.Token);
                }
            }
            finally
            {
                await lanes.CompleteAsync();
            }
        }
        catch (ProtocolViolationException e)
        {
            logger.LogWarning("Agent {AgentId} broke the protocol ({Reason}); closing its connection", connection.AgentId, e.Message);
            await connection.Socket.CloseAsync(AgentCloseCodes.MalformedFrame, e.Message);
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or ChannelClosedException)
        {
            logger.LogInformation("Agent {AgentId} connection ended: {Reason}", connection.AgentId, e.Message);
        }
        finally
        {
            connection.Socket.CloseTunnels("the agent's connection closed");
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
        if (!await store.MarkOnlineAsync(connection.AgentId, connection.KeyHash, connection.Id, hello, reachedUrl, cancellationToken))
        {
            return false;
        }

        connection.Welcomed = true;
        await using (var db = await dataSource.OpenConnectionAsync(cancellationToken))
        {
            // Another replica still holding an older connection of this agent closes it (CloseIfReplacedAsync).
            await db.ExecuteAsync(new CommandDefinition("SELECT pg_notify(@channel, @payload)",
                new { channel = ConnectionsChannel, payload = $"{connection.AgentId} {connection.Id}" }, cancellationToken: cancellationToken));
        }

        await refusals.ForgetAsync(connection.AgentId, cancellationToken);
        await sessions.ApplyAsync(connection.AgentId, hello.Sessions, cancellationToken);
        await FailLostSessionsAsync(connection.AgentId, hello, cancellationToken);
        var unowned = await sessions.UnownedAsync(connection.AgentId, hello.Sessions, cancellationToken);
        await connection.Socket.SendAsync(new WelcomeMessage(AgentProtocol.Version, time.GetUtcNow(), unowned), cancellationToken);
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

                await sessions.ApplyAsync(connection.AgentId, heartbeat.Sessions, cancellationToken);
                metrics.HeartbeatHandled(time.GetElapsedTime(received));
                logger.LogDebug("Heartbeat from agent {AgentId}", connection.AgentId);
                break;
            case CommandAckMessage ack:
                await commands.MarkAckedAsync(connection.AgentId, ack.CommandId, cancellationToken);
                metrics.CommandAnswered("ack", ack.CommandId);
                break;
            case CommandResultMessage result:
                await commands.CompleteAsync(connection.AgentId, result, cancellationToken);
                metrics.CommandAnswered("result", result.CommandId);
                break;
            case AgentChecksMessage report:
                await store.RecordChecksAsync(connection.AgentId, report.Checks, cancellationToken);
                break;
            case SessionStateMessage state:
                await sessions.ApplyAsync(connection.AgentId, [state.Session], cancellationToken);
                break;
            case RecordingMessage recording:
                await recordings.ReportAsync(connection.AgentId, recording, cancellationToken);
                break;
            default:
                throw new ProtocolViolationException($"agents may not send {message.GetType().Name}");
        }

        return true;
    }

    /// <summary>
    /// Tells a (re)connected agent what it missed about recordings. A failure here must not cost the agent its
    /// connection: what was not sent goes at its next connect, and admins see the recording missing meanwhile.
    /// </summary>
    private async Task ResumeRecordingsAsync(AgentConnection connection, int protocolVersion, CancellationToken cancellationToken)
    {
        try
        {
            await recordings.AgentConnectedAsync(connection.AgentId, protocolVersion, async (message, ct) =>
            {
                await connection.Socket.SendAsync(message, ct);
                return true;
            }, cancellationToken);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            logger.LogWarning("Could not resume agent {AgentId}'s recordings ({Reason}); it is asked again at its next connect", connection.AgentId, e.Message);
        }
    }

    /// <summary>
    /// Closes this connection because its credential is no longer valid. Only this connection: a newer one of the
    /// same id, with a new key, stays.
    /// </summary>
    private async Task CloseRevokedAsync(AgentConnection connection)
    {
        logger.LogWarning("Closing agent {AgentId}'s connection: its credential was revoked or replaced", connection.AgentId);
        await refusals.RecordAsync(connection.AgentId, "its credential was revoked or replaced while it was connected", CancellationToken.None);
        // The connection's own end (AcceptAsync's finally) removes it from the live set and marks the agent offline.
        await connection.Socket.CloseAsync(AgentCloseCodes.Revoked, "the agent's credential was revoked");
    }

    /// <summary>
    /// Reconciles after a restart on either side: a session we believe runs on this agent, but which the agent
    /// does not report, is gone. (Pending and starting sessions are not: their start command will be re-sent.)
    /// </summary>
    private async Task FailLostSessionsAsync(string agentId, HelloMessage hello, CancellationToken cancellationToken)
    {
        // Users read this reason in the UI; on Kubernetes a session is its pod.
        var reason = hello.Platform == "kubernetes" ? "session pod missing" : "session process missing: the agent restarted and no longer runs it";
        foreach (var sessionId in await sessions.FailLostAsync(agentId, hello.Sessions, reason, cancellationToken))
        {
            logger.LogWarning("Agent {AgentId} no longer ran session {SessionId}; marked it failed", agentId, sessionId);
        }
    }
}
