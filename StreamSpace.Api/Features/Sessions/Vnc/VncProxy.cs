using System.Net.WebSockets;
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
    /// <summary>The session left <c>running</c> (stopping, hibernating, failed).</summary>
    public const WebSocketCloseStatus SessionEnded = (WebSocketCloseStatus)4410;
}

/// <summary>
/// /vnc/{sessionId}: the browser's binary WebSocket, joined to a stream on the session's agent, which joins it
/// to the session's VNC server. The browser never learns the VNC password or where the session runs.
/// </summary>
public sealed class VncProxy(VncTickets tickets, SessionStore sessions, ISessionAgents agents, SessionViewers viewers, ILogger<VncProxy> logger)
{
    private static readonly TimeSpan OpenTimeout = TimeSpan.FromSeconds(10);

    public async Task HandleAsync(HttpContext context, string sessionId)
    {
        if (!context.WebSockets.IsWebSocketRequest)
        {
            await TypedResults.Problem(title: "This is a VNC WebSocket.", detail: "Open it with a WebSocket and a ticket from POST /api/v1/sessions/{id}/connect.",
                statusCode: StatusCodes.Status400BadRequest).ExecuteAsync(context);
            return;
        }

        if (tickets.Redeem(context.Request.Query["ticket"], sessionId) is not { } user)
        {
            await TypedResults.Problem(title: "Invalid VNC ticket.", detail: "The ticket is missing, used, expired or for another session; ask POST /api/v1/sessions/{id}/connect for a new one.",
                statusCode: StatusCodes.Status401Unauthorized).ExecuteAsync(context);
            return;
        }

        var subProtocol = context.WebSockets.WebSocketRequestedProtocols.Contains("binary") ? "binary" : null;
        using var viewer = await context.WebSockets.AcceptWebSocketAsync(subProtocol);
        var session = await sessions.FindPlacementAsync(sessionId, context.RequestAborted);
        if (session is null)
        {
            await RefuseAsync(viewer, sessionId, VncCloseCodes.SessionNotFound, "session not found");
            return;
        }

        if (session.Value.State != SessionState.Running)
        {
            await RefuseAsync(viewer, sessionId, VncCloseCodes.NotRunning, $"session is {session.Value.State.ToName()}");
            return;
        }

        if (session.Value.AgentId is not { } agentId || agents.Socket(agentId) is not { } agent)
        {
            await RefuseAsync(viewer, sessionId, VncCloseCodes.AgentOffline, "agent not online");
            return;
        }

        var (stream, failure) = await agent.OpenTunnelAsync(sessionId, OpenTimeout, context.RequestAborted);
        if (stream is null)
        {
            await RefuseAsync(viewer, sessionId, VncCloseCodes.VncUnreachable, $"could not reach the session's VNC server: {failure}");
            return;
        }

        // From here on the tunnel is the agent's as much as ours: however this ends (the viewer's tab closes during the
        // insert, the agent goes away mid-view), the agent is told and the viewer's row and audit are closed.
        LiveViewer? live = null;
        var reason = "the viewer closed";
        try
        {
            live = await viewers.OpenAsync(sessionId, user, context.Connection.RemoteIpAddress?.ToString(), context.RequestAborted);
            if (live is null)
            {
                reason = "the session is gone";
                await RefuseAsync(viewer, sessionId, VncCloseCodes.SessionNotFound, "session not found");
                return;
            }

            logger.LogInformation("VNC connection established for session {SessionId}: UI -> Control Plane -> Agent {AgentId} -> session (viewer {ViewerId}, {User})",
                sessionId, agentId, live.Id, user.Identity?.Name);
            using (stream)
            {
                reason = await PumpAsync(viewer, stream, live, context.RequestAborted);
            }
        }
        finally
        {
            await agent.CloseTunnelAsync(stream.Id, reason);
            if (live is not null)
            {
                await viewers.ClosedAsync(live, reason);
            }
        }
    }

    /// <summary>Joins the viewer to the stream until either side ends or the viewer must close; returns why it closed.</summary>
    private async Task<string> PumpAsync(WebSocket viewer, TunnelStream stream, LiveViewer live, CancellationToken aborted)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(aborted);
        var watch = viewers.WatchAsync(live, stop.Token);
        var mustClose = Task.Delay(Timeout.Infinite, live.Closing);
        // The viewer's messages are received straight into tunnel frames, and the agent's frames are sent to the
        // viewer as they arrived: no buffer in between, and credit flows back only as the viewer takes the bytes.
        var fromViewer = stream.CopyFromAsync(async (frame, token) =>
        {
            while (true)
            {
                var result = await viewer.ReceiveAsync(frame, token);
                // A viewer that must close sends nothing more into the session, not even while its close is under way.
                if (result.MessageType == WebSocketMessageType.Close || live.Closing.IsCancellationRequested)
                {
                    return 0;
                }

                if (result.Count > 0)
                {
                    live.Count(result.Count);
                    return result.Count;
                }
            }
        }, stop.Token);
        var toViewer = stream.CopyToAsync(async (chunk, token) =>
        {
            // ...and sees nothing more of it.
            live.Closing.ThrowIfCancellationRequested();
            await viewer.SendAsync(chunk, WebSocketMessageType.Binary, true, token);
            live.Count(chunk.Length);
        }, stop.Token);

        await Task.WhenAny(fromViewer, toViewer, mustClose);
        string reason;
        if (viewer.State is WebSocketState.Open or WebSocketState.CloseReceived)
        {
            // Closed with a code before the pumps are cancelled: cancelling a WebSocket's receive aborts it, and the
            // viewer would learn nothing. A tunnel that ended by itself most often means the session is stopping.
            using var check = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            (var status, reason) = live.CloseStatus
                ?? (toViewer.IsCompleted ? await CheckQuietlyAsync(live, check.Token) : null)
                ?? (WebSocketCloseStatus.NormalClosure, stream.CloseReason ?? "closed");
            if (status != WebSocketCloseStatus.NormalClosure)
            {
                logger.LogInformation("Closing viewer {ViewerId} of session {SessionId}: {Reason}", live.Id, live.SessionId, reason);
            }

            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            try
            {
                await viewer.CloseOutputAsync(status, reason.Length > 120 ? reason[..120] : reason, timeout.Token);
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
        try
        {
            await Task.WhenAll(fromViewer, toViewer, watch);
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException or ObjectDisposedException or IOException)
        {
            // One side ended; the other is being torn down.
        }

        return reason;
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
            await viewer.CloseAsync(status, reason.Length > 120 ? reason[..120] : reason, timeout.Token);
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException)
        {
            viewer.Abort();
        }
    }
}
