using System.Buffers;
using System.Diagnostics;
using System.Net.WebSockets;
using StreamSpace.Api.Features.Replicas;
using StreamSpace.Api.Infrastructure.Metrics;
using StreamSpace.Api.Features.Sessions.Viewers;
using StreamSpace.Contracts;
using StreamSpace.Contracts.Tunnel;

namespace StreamSpace.Api.Features.Sessions.Vnc;

/// <summary>WebSocket close codes a viewer gets; each names one cause.</summary>
public static class VncCloseCodes
{
    public const WebSocketCloseStatus SessionNotFound = (WebSocketCloseStatus)4404;
    public const WebSocketCloseStatus NotRunning = (WebSocketCloseStatus)4409;
    public const WebSocketCloseStatus AgentOffline = (WebSocketCloseStatus)4503;
    public const WebSocketCloseStatus VncUnreachable = (WebSocketCloseStatus)4502;

    // An open viewer is closed with one of these once it must no longer see the session.
    /// <summary>The viewer's sign-in no longer stands: token expired or revoked, user disabled, deleted or given another role.</summary>
    public const WebSocketCloseStatus SignInEnded = (WebSocketCloseStatus)4401;
    /// <summary>The session's owner or an admin revoked this viewer.</summary>
    public const WebSocketCloseStatus Revoked = (WebSocketCloseStatus)4403;
    /// <summary>The share the viewer came through ended or expired.</summary>
    public const WebSocketCloseStatus ShareEnded = (WebSocketCloseStatus)4411;
    /// <summary>The session left <c>running</c> (stopping, hibernating, failed).</summary>
    public const WebSocketCloseStatus SessionEnded = (WebSocketCloseStatus)4410;
    /// <summary>This replica is going away; the viewer reconnects at once with a fresh ticket (307: go again, elsewhere).</summary>
    public const WebSocketCloseStatus ReplicaStopping = (WebSocketCloseStatus)4307;
}

/// <summary>
/// /vnc/{sessionId}: the browser's binary WebSocket, joined to the session's VNC server through its agent. With a
/// version-2 agent the agent dials a data connection per viewer (<see cref="PendingStreams"/>) and this relay copies
/// bytes between it and the WebSocket; a version-1 agent carries the viewer in the credit mux of its control socket.
/// The browser never learns the VNC password or where the session runs.
/// </summary>
public sealed class VncProxy(
    VncTickets tickets,
    SessionStore sessions,
    ISessionAgents agents,
    SessionViewers viewers,
    IShareStatus shares,
    PendingStreams streams,
    ReplicaIdentity replica,
    ViewerDrain drain,
    ApiSettings settings,
    ApiMetrics metrics,
    ILogger<VncProxy> logger)
{
    public const string ViewOnlyAgentTooOld = "the session's agent is too old to share view-only; upgrade the agent";

    private static readonly TimeSpan OpenTimeout = DataConnection.TokenLifetime;
    private static readonly TimeSpan EndCheckTime = TimeSpan.FromSeconds(2);
    // Input messages are 6 to 20 bytes; a clipboard paste is the largest a viewer sends.
    private const int ViewerReceiveBuffer = 16 * 1024;

    public async Task HandleAsync(HttpContext context, string sessionId)
    {
        if (!context.WebSockets.IsWebSocketRequest)
        {
            await TypedResults.Problem(title: "This is a VNC WebSocket.", detail: "Open it with a WebSocket and a ticket from POST /api/v1/sessions/{id}/connect.",
                statusCode: StatusCodes.Status400BadRequest).ExecuteAsync(context);
            return;
        }

        if (drain.IsDraining)
        {
            await TypedResults.Problem(title: "This replica is stopping.", detail: "Ask for a new ticket and connect again.",
                statusCode: StatusCodes.Status503ServiceUnavailable).ExecuteAsync(context);
            return;
        }

        // A data token is the agent's and never a viewer's credential: refused before any lookup.
        var ticket = context.Request.Query["ticket"].ToString();
        if (ticket.StartsWith(DataConnection.TokenPrefix, StringComparison.Ordinal) || await tickets.RedeemAsync(ticket, sessionId, TicketPurpose.Vnc, context.RequestAborted) is not { } redeemed)
        {
            await TypedResults.Problem(title: "Invalid VNC ticket.", detail: "The ticket is missing, used, expired or for another session; ask POST /api/v1/sessions/{id}/connect for a new one.",
                statusCode: StatusCodes.Status401Unauthorized).ExecuteAsync(context);
            return;
        }

        var redeemedAt = Stopwatch.GetTimestamp();
        // A ticket lives 30 s: a share that ended or expired since it was issued lets no one in with it.
        var shareEnded = redeemed.Share is { } grant ? await shares.EndedAsync(grant.ShareId, context.RequestAborted) : null;
        var subProtocol = context.WebSockets.WebSocketRequestedProtocols.Contains("binary") ? "binary" : null;
        using var viewer = await context.WebSockets.AcceptWebSocketAsync(subProtocol);
        var session = await sessions.FindPlacementAsync(sessionId, context.RequestAborted);
        if (session is null)
        {
            await RefuseAsync(viewer, sessionId, VncCloseCodes.SessionNotFound, "session not found");
            return;
        }

        if (shareEnded is not null)
        {
            await RefuseAsync(viewer, sessionId, VncCloseCodes.ShareEnded, shareEnded);
            return;
        }

        if (session.Value.State != SessionState.Running)
        {
            await RefuseAsync(viewer, sessionId, VncCloseCodes.NotRunning, $"session is {session.Value.State.ToName()}");
            return;
        }

        if (session.Value.AgentId is not { } agentId || await agents.LinkAsync(agentId, context.RequestAborted) is not { } link)
        {
            await RefuseAsync(viewer, sessionId, VncCloseCodes.AgentOffline, "agent not online");
            return;
        }

        // An older agent would ignore the flag and sign the viewer in with the full password: never sent one.
        if (redeemed.Share is { ViewOnly: true } && link.ProtocolVersion < AgentProtocol.ViewOnlyVersion)
        {
            await RefuseAsync(viewer, sessionId, VncCloseCodes.VncUnreachable, ViewOnlyAgentTooOld);
            return;
        }

        var opened = new OpenedViewer(viewer, sessionId, agentId, redeemed.User, context.Connection.RemoteIpAddress?.ToString(), redeemedAt, redeemed.Share);
        if (link.ProtocolVersion == AgentProtocol.MuxVersion)
        {
            await RunMuxAsync(opened, context.RequestAborted);
        }
        else
        {
            await RunDataAsync(opened, link, context.RequestAborted);
        }
    }

    /// <summary>Asks the agent for a data connection, waits for it, and relays the viewer over it.</summary>
    private async Task RunDataAsync(OpenedViewer opened, AgentLink link, CancellationToken aborted)
    {
        var (viewer, sessionId, agentId) = (opened.Viewer, opened.SessionId, opened.AgentId);
        var pending = streams.Expect(sessionId, agentId);
        DataLink? data = null;
        try
        {
            if (!await AskForDataConnectionAsync(agentId, new StreamOpenMessage(pending.StreamId, sessionId, pending.Token, replica.DataUrl ?? "", pending.ExpiresAt,
                ViewOnly: opened.Share?.ViewOnly ?? false), aborted))
            {
                await RefuseAsync(viewer, sessionId, VncCloseCodes.AgentOffline, "agent not online");
                return;
            }

            using var wait = CancellationTokenSource.CreateLinkedTokenSource(aborted);
            wait.CancelAfter(OpenTimeout);
            data = await pending.Arrival.WaitAsync(wait.Token);
        }
        catch (DataConnectionFailedException e)
        {
            await RefuseAsync(viewer, sessionId, VncCloseCodes.VncUnreachable, e.Message);
            return;
        }
        catch (OperationCanceledException) when (!aborted.IsCancellationRequested)
        {
            await RefuseAsync(viewer, sessionId, VncCloseCodes.VncUnreachable,
                $"could not reach the session's VNC server: the agent's data connection did not arrive within {OpenTimeout.TotalSeconds:0}s");
            return;
        }
        finally
        {
            streams.Forget(pending);
            if (data is null)
            {
                // A connection that arrives after this viewer gave up is closed, not left waiting for a relay.
                pending.Fail("the viewer is gone");
                _ = pending.Arrival.ContinueWith(t => t.Result.Finish(), CancellationToken.None, TaskContinuationOptions.OnlyOnRanToCompletion, TaskScheduler.Default);
            }
        }

        try
        {
            await ViewAsync(opened, ApiMetrics.ViewerPaths.Raw, (live, stop) =>
            {
                var fromViewer = FromViewerAsync(viewer, data.Stream, live, metrics, stop.Token);
                var toViewer = ToViewerAsync(data.Stream, viewer, live, metrics, settings.VncRelayBuffer, stop.Token);
                return (fromViewer, toViewer, token => ClassifyEndAsync(live, agentId, link.ConnectionId, token));
            }, aborted);
        }
        finally
        {
            data.Finish();
        }
    }

    /// <summary>
    /// Sends the agent the open, wherever it is held. False when it cannot go: the agent or its replica is gone, its
    /// outbox closed as it disconnects, or the database cannot be reached; the viewer then retries with a new ticket.
    /// </summary>
    private async Task<bool> AskForDataConnectionAsync(string agentId, StreamOpenMessage open, CancellationToken aborted)
    {
        if (open.DataUrl.Length == 0)
        {
            logger.LogWarning("The data listener has not bound its port yet; refusing the viewer of session {SessionId}", open.SessionId);
            return false;
        }

        try
        {
            return await agents.OpenStreamAsync(agentId, open, aborted);
        }
        catch (Exception e) when (e is System.Threading.Channels.ChannelClosedException or Npgsql.NpgsqlException or TimeoutException or InvalidOperationException
            && !aborted.IsCancellationRequested)
        {
            logger.LogWarning("Could not ask agent {AgentId} for a data connection: {Reason}", agentId, e.Message);
            return false;
        }
    }

    /// <summary>The version-1 path: the viewer rides the credit mux on the agent's control socket, which must be held here.</summary>
    private async Task RunMuxAsync(OpenedViewer opened, CancellationToken aborted)
    {
        var (viewer, sessionId, agentId) = (opened.Viewer, opened.SessionId, opened.AgentId);
        if (agents.Socket(agentId) is not { } agent)
        {
            // Online (the caller read its link), but held by another replica: the mux rides only the holder's socket.
            await RefuseAsync(viewer, sessionId, VncCloseCodes.VncUnreachable, "agent version 1 cannot serve viewers on another replica; upgrade the agent");
            return;
        }

        var (stream, failure) = await agent.OpenTunnelAsync(sessionId, OpenTimeout, aborted);
        if (stream is null)
        {
            await RefuseAsync(viewer, sessionId, VncCloseCodes.VncUnreachable, $"could not reach the session's VNC server: {failure}");
            return;
        }

        // From here on the tunnel is the agent's as much as ours: however this ends (the viewer's tab closes during the
        // insert, the agent goes away mid-view), the agent is told.
        var reason = "the viewer closed";
        try
        {
            using (stream)
            {
                reason = await ViewAsync(opened, ApiMetrics.ViewerPaths.Mux, (live, stop) =>
                {
                    var (fromViewer, toViewer) = MuxPumps(viewer, stream, live, metrics, stop.Token);
                    return (fromViewer, toViewer, async token => await CheckQuietlyAsync(live, token) ?? (WebSocketCloseStatus.NormalClosure, stream.CloseReason ?? "closed"));
                }, aborted);
            }
        }
        finally
        {
            await agent.CloseTunnelAsync(stream.Id, reason);
        }
    }

    /// <summary>
    /// Records the viewer (its row and audit), runs the pumps until either side ends or the viewer must close, and
    /// closes the row however that ends. Returns why the viewer closed.
    /// </summary>
    private async Task<string> ViewAsync(OpenedViewer opened, string path,
        Func<LiveViewer, CancellationTokenSource, (Task FromViewer, Task ToViewer, Func<CancellationToken, Task<(WebSocketCloseStatus, string)>> StreamEnded)> pumps,
        CancellationToken aborted)
    {
        LiveViewer? live = null;
        IDisposable? tracked = null;
        var reason = "the viewer closed";
        try
        {
            live = await viewers.OpenAsync(opened.SessionId, opened.User, opened.Address, opened.Share, aborted);
            if (live is null)
            {
                reason = "the session is gone";
                await RefuseAsync(opened.Viewer, opened.SessionId, VncCloseCodes.SessionNotFound, "session not found");
                return reason;
            }

            tracked = drain.Track(live);
            metrics.ViewerOpened(path, Stopwatch.GetElapsedTime(opened.RedeemedAt));
            logger.LogInformation("VNC connection established for session {SessionId}: UI -> Control Plane -> Agent {AgentId} -> session (viewer {ViewerId}, {User}, path {Path})",
                opened.SessionId, opened.AgentId, live.Id, opened.User.Identity?.Name, path);
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(aborted);
            var (fromViewer, toViewer, streamEnded) = pumps(live, stop);
            reason = await PumpAsync(opened.Viewer, live, fromViewer, toViewer, streamEnded, stop);
            return reason;
        }
        finally
        {
            if (live is not null)
            {
                await viewers.ClosedAsync(live, reason);
            }

            if (tracked is not null)
            {
                metrics.ViewerClosed(path);
            }

            // Last: a drain waits for this, and by then the viewer's row and audit entry are written.
            tracked?.Dispose();
        }
    }

    /// <summary>
    /// A send to the viewer is never cancelled: cancelling a WebSocket's send aborts the connection, and an abort right
    /// after the close frame resets the TCP connection, so the viewer loses that close frame and learns nothing. A
    /// stalled viewer's send ends when <see cref="PumpAsync"/> gives up on its close and aborts it.
    /// </summary>
    private static readonly CancellationToken ViewerSendToken = CancellationToken.None;

    /// <summary>Viewer → data connection: ManagedWebSocket unmasks in place, and the bytes go on as they came.</summary>
    private static async Task FromViewerAsync(WebSocket viewer, Stream data, LiveViewer live, ApiMetrics metrics, CancellationToken cancellationToken)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(ViewerReceiveBuffer);
        try
        {
            while (true)
            {
                var result = await viewer.ReceiveAsync(buffer.AsMemory(0, ViewerReceiveBuffer), cancellationToken);
                // A viewer that must close sends nothing more into the session, not even while its close is under way.
                if (result.MessageType == WebSocketMessageType.Close || live.Closing.IsCancellationRequested)
                {
                    return;
                }

                if (result.Count > 0)
                {
                    await data.WriteAsync(buffer.AsMemory(0, result.Count), cancellationToken);
                    live.Count(result.Count);
                    metrics.TunnelBytesFromViewer(result.Count);
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// Data connection → viewer: one receive of up to <paramref name="bufferSize"/> bytes, sent as one binary message
    /// (RFB is a byte stream; noVNC does not care where messages split). A stalled viewer stops this loop in SendAsync,
    /// so the data connection's TCP window closes and the agent stops reading that viewer's VNC socket.
    /// </summary>
    private static async Task ToViewerAsync(Stream data, WebSocket viewer, LiveViewer live, ApiMetrics metrics, int bufferSize, CancellationToken cancellationToken)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(bufferSize);
        try
        {
            while (await data.ReadAsync(buffer.AsMemory(0, bufferSize), cancellationToken) is var read and > 0)
            {
                // A viewer that must close sees nothing more of the session.
                live.Closing.ThrowIfCancellationRequested();
                cancellationToken.ThrowIfCancellationRequested();
                await viewer.SendAsync(buffer.AsMemory(0, read), WebSocketMessageType.Binary, true, ViewerSendToken);
                live.Count(read);
                metrics.TunnelBytesToViewer(read);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static (Task FromViewer, Task ToViewer) MuxPumps(WebSocket viewer, TunnelStream stream, LiveViewer live, ApiMetrics metrics, CancellationToken cancellationToken)
    {
        // The viewer's messages are received straight into tunnel frames, and the agent's frames are sent to the
        // viewer as they arrived: no buffer in between, and credit flows back only as the viewer takes the bytes.
        var fromViewer = stream.CopyFromAsync(async (frame, token) =>
        {
            while (true)
            {
                var result = await viewer.ReceiveAsync(frame, token);
                if (result.MessageType == WebSocketMessageType.Close || live.Closing.IsCancellationRequested)
                {
                    return 0;
                }

                if (result.Count > 0)
                {
                    live.Count(result.Count);
                    metrics.TunnelBytesFromViewer(result.Count);
                    return result.Count;
                }
            }
        }, cancellationToken);
        var toViewer = stream.CopyToAsync(async (chunk, token) =>
        {
            live.Closing.ThrowIfCancellationRequested();
            token.ThrowIfCancellationRequested();
            await viewer.SendAsync(chunk, WebSocketMessageType.Binary, true, ViewerSendToken);
            live.Count(chunk.Length);
            metrics.TunnelBytesToViewer(chunk.Length);
        }, cancellationToken);
        return (fromViewer, toViewer);
    }

    /// <summary>Runs the pumps until either side ends or the viewer must close; returns why it closed.</summary>
    private async Task<string> PumpAsync(WebSocket viewer, LiveViewer live, Task fromViewer, Task toViewer,
        Func<CancellationToken, Task<(WebSocketCloseStatus, string)>> streamEnded, CancellationTokenSource stop)
    {
        var watch = viewers.WatchAsync(live, stop.Token);
        var mustClose = Task.Delay(Timeout.Infinite, live.Closing);
        await Task.WhenAny(fromViewer, toViewer, mustClose);
        string reason;
        if (viewer.State is WebSocketState.Open or WebSocketState.CloseReceived)
        {
            // Closed with a code before the pumps are cancelled: cancelling a WebSocket's receive aborts it, and the
            // viewer would learn nothing.
            using var check = new CancellationTokenSource(EndCheckTime);
            (var status, reason) = live.CloseStatus
                ?? (toViewer.IsCompleted ? await streamEnded(check.Token) : (WebSocketCloseStatus.NormalClosure, "closed"));
            if (status != WebSocketCloseStatus.NormalClosure)
            {
                logger.LogInformation("Closing viewer {ViewerId} of session {SessionId}: {Reason}", live.Id, live.SessionId, reason);
            }

            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            try
            {
                await viewer.CloseOutputAsync(status, AgentSocket.TruncateCloseReason(reason), timeout.Token);
                // The viewer answers with its own close, which ends the receiving side by itself.
                await Task.WhenAny(fromViewer, Task.Delay(TimeSpan.FromSeconds(2), CancellationToken.None));
            }
            catch (Exception e) when (e is OperationCanceledException or WebSocketException)
            {
                viewer.Abort();
            }
        }
        else
        {
            reason = live.CloseStatus?.Reason ?? "the viewer closed";
        }

        await stop.CancelAsync();
        var pumps = Task.WhenAll(fromViewer, toViewer, watch);
        if (await Task.WhenAny(pumps, Task.Delay(EndCheckTime, CancellationToken.None)) != pumps)
        {
            // A send the viewer never takes (sends are not cancelled): only an abort ends it.
            viewer.Abort();
        }

        try
        {
            await pumps;
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException or ObjectDisposedException or IOException)
        {
            // One side ended; the other is being torn down.
        }

        return reason;
    }

    /// <summary>
    /// Why a data connection ended without the viewer closing. The agent's control connection ends at about the same
    /// moment as its data connections when the agent stops, so the answer is awaited for up to 2 s: the session left
    /// running (4410 and the like), the agent's connection is not the one the stream was opened on (4503), else the
    /// VNC server closed (1000).
    /// </summary>
    private async Task<(WebSocketCloseStatus, string)> ClassifyEndAsync(LiveViewer live, string agentId, Guid connectionId, CancellationToken cancellationToken)
    {
        try
        {
            while (true)
            {
                if (await viewers.CheckAsync(live, touch: false, cancellationToken) is { } mustClose)
                {
                    return mustClose;
                }

                if (await agents.LinkAsync(agentId, cancellationToken) is not { } link || link.ConnectionId != connectionId)
                {
                    return (VncCloseCodes.AgentOffline, "the agent's connection closed");
                }

                await Task.Delay(TimeSpan.FromMilliseconds(100), cancellationToken);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or Npgsql.NpgsqlException)
        {
            return (WebSocketCloseStatus.NormalClosure, "the VNC server closed");
        }
    }

    /// <summary>Why a viewer whose tunnel ended must close (the session stopped, its right ended), if the check answers in time.</summary>
    private async Task<(WebSocketCloseStatus Status, string Reason)?> CheckQuietlyAsync(LiveViewer live, CancellationToken cancellationToken)
    {
        try
        {
            return await viewers.CheckAsync(live, touch: false, cancellationToken);
        }
        catch (Exception e) when (e is OperationCanceledException or Npgsql.NpgsqlException)
        {
            return null;
        }
    }

    private async Task RefuseAsync(WebSocket viewer, string sessionId, WebSocketCloseStatus status, string reason)
    {
        logger.LogWarning("VNC proxy: {Reason} (session {SessionId})", reason, sessionId);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        try
        {
            await viewer.CloseAsync(status, AgentSocket.TruncateCloseReason(reason), timeout.Token);
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException)
        {
            viewer.Abort();
        }
    }

    /// <param name="RedeemedAt">When the ticket was taken (a <see cref="Stopwatch"/> timestamp), for the open-time metric.</param>
    /// <param name="Share">The share the viewer came through, if any.</param>
    private sealed record OpenedViewer(WebSocket Viewer, string SessionId, string AgentId, System.Security.Claims.ClaimsPrincipal User, string? Address, long RedeemedAt,
        ShareGrant? Share);
}
