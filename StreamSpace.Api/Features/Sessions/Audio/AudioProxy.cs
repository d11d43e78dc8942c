using System.Net.WebSockets;
using System.Security.Claims;
using StreamSpace.Api.Features.Replicas;
using StreamSpace.Api.Features.Sessions.Viewers;
using StreamSpace.Api.Features.Sessions.Vnc;
using StreamSpace.Contracts;
using StreamSpace.Contracts.Tunnel;

namespace StreamSpace.Api.Features.Sessions.Audio;

/// <summary>Close codes of the audio WebSocket beyond the viewer's own (<see cref="VncCloseCodes"/>, which it shares).</summary>
public static class AudioCloseCodes
{
    /// <summary>The session's template has audio off (or its agent is too old to carry sound).</summary>
    public const WebSocketCloseStatus NoSound = (WebSocketCloseStatus)4415;
}

/// <summary>
/// /audio/{sessionId}: the browser's audio WebSocket. Like /vnc it takes a single-use ticket (issued beside the
/// viewer's, see <see cref="AudioTickets"/>) and asks the session's agent for a data connection, here with the purpose
/// <see cref="AudioStreams.Purpose"/>; each Opus packet the agent sends becomes one binary message. It is checked every
/// second as a viewer is (<see cref="SessionViewers.CheckCompanionAsync"/>: sign-in, share, session running) and closes
/// with the viewer's codes when it must; it is not listed as a viewer of its own. It lives only beside a viewer: once
/// its user (through its share, if any) has had no open viewer of the session for a few seconds (<see cref="ViewerGap"/>;
/// until a viewer is first seen, <see cref="ViewerGrace"/> from the opening, as the page opens its viewer a moment later), it closes with
/// the viewer's revoked code, so revoking or closing a viewer ends its sound too.
/// </summary>
public sealed class AudioProxy(
    VncTickets tickets,
    SessionStore sessions,
    ISessionAgents agents,
    SessionViewers viewers,
    IShareStatus shares,
    PendingStreams streams,
    ReplicaIdentity replica,
    ViewerDrain drain,
    TimeProvider time,
    ILogger<AudioProxy> logger)
{
    /// <summary>How long after the audio socket opens it may wait for its viewer.</summary>
    public static readonly TimeSpan ViewerGrace = TimeSpan.FromSeconds(10);

    /// <summary>How long a viewer may be missing later: a viewer reconnecting with a fresh ticket is back well within it.</summary>
    public static readonly TimeSpan ViewerGap = TimeSpan.FromSeconds(3);

    private static readonly TimeSpan OpenTimeout = DataConnection.TokenLifetime;
    private static readonly TimeSpan CheckEvery = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan CloseTimeout = TimeSpan.FromSeconds(2);

    public async Task HandleAsync(HttpContext context, string sessionId)
    {
        if (!context.WebSockets.IsWebSocketRequest)
        {
            await TypedResults.Problem(title: "This is an audio WebSocket.", detail: "Open it with a WebSocket at the audio_url of POST /api/v1/sessions/{id}/connect.",
                statusCode: StatusCodes.Status400BadRequest).ExecuteAsync(context);
            return;
        }

        if (drain.IsDraining)
        {
            await TypedResults.Problem(title: "This replica is stopping.", detail: "Connect again for a new ticket.",
                statusCode: StatusCodes.Status503ServiceUnavailable).ExecuteAsync(context);
            return;
        }

        var ticket = context.Request.Query["ticket"].ToString();
        if (ticket.StartsWith(DataConnection.TokenPrefix, StringComparison.Ordinal) || await tickets.RedeemAsync(ticket, sessionId, TicketPurpose.Audio, context.RequestAborted) is not { } redeemed)
        {
            await TypedResults.Problem(title: "Invalid audio ticket.", detail: "The ticket is missing, used, expired or for another session; connect again for a new one.",
                statusCode: StatusCodes.Status401Unauthorized).ExecuteAsync(context);
            return;
        }

        var shareEnded = redeemed.Share is { } grant ? await shares.EndedAsync(grant.ShareId, context.RequestAborted) : null;
        using var listener = await context.WebSockets.AcceptWebSocketAsync();
        var session = await sessions.FindPlacementAsync(sessionId, context.RequestAborted);
        var refusal = session switch
        {
            null => (VncCloseCodes.SessionNotFound, "session not found"),
            _ when shareEnded is not null => (VncCloseCodes.ShareEnded, shareEnded),
            { State: not SessionState.Running } => (VncCloseCodes.NotRunning, $"session is {session.Value.State.ToName()}"),
            _ => ((WebSocketCloseStatus, string)?)null,
        };
        if (refusal is { } refused)
        {
            await CloseAsync(listener, sessionId, refused.Item1, refused.Item2, null);
            return;
        }

        if (session!.Value.AgentId is not { } agentId || await agents.LinkAsync(agentId, context.RequestAborted) is not { } link)
        {
            await CloseAsync(listener, sessionId, VncCloseCodes.AgentOffline, "agent not online", null);
            return;
        }

        if (link.ProtocolVersion < AgentProtocol.MediaVersion)
        {
            await CloseAsync(listener, sessionId, AudioCloseCodes.NoSound, "the session's agent is too old to carry sound; upgrade the agent", null);
            return;
        }

        var (data, failure) = await OpenAsync(sessionId, agentId, context.RequestAborted);
        if (data is null)
        {
            await CloseAsync(listener, sessionId, failure!.Value.Status, failure.Value.Reason, null);
            return;
        }

        try
        {
            await ListenAsync(listener, data.Stream, sessionId, redeemed.User, redeemed.Share, context.RequestAborted);
        }
        finally
        {
            data.Finish();
        }
    }

    /// <summary>Asks the agent for the session's sound and reads its first reply; the data connection once the agent captures, else the close to give.</summary>
    private async Task<(DataLink? Data, (WebSocketCloseStatus Status, string Reason)? Failure)> OpenAsync(string sessionId, string agentId, CancellationToken aborted)
    {
        var pending = streams.Expect(sessionId, agentId);
        DataLink? data = null;
        try
        {
            var open = new StreamOpenMessage(pending.StreamId, sessionId, pending.Token, replica.DataUrl ?? "", pending.ExpiresAt, AudioStreams.Purpose);
            if (open.DataUrl.Length == 0 || !await agents.OpenStreamAsync(agentId, open, aborted))
            {
                return (null, (VncCloseCodes.AgentOffline, "agent not online"));
            }

            using var wait = CancellationTokenSource.CreateLinkedTokenSource(aborted);
            wait.CancelAfter(OpenTimeout);
            data = await pending.Arrival.WaitAsync(wait.Token);
            var reply = await FileStreams.ReadReplyAsync(data.Stream, wait.Token);
            if (reply.Status == StatusCodes.Status200OK)
            {
                return (data, null);
            }

            data.Finish();
            var reason = reply.Error ?? $"the agent refused the sound ({reply.Status})";
            return (null, (reply.Status switch
            {
                StatusCodes.Status403Forbidden => AudioCloseCodes.NoSound,
                StatusCodes.Status409Conflict => VncCloseCodes.NotRunning,
                _ => VncCloseCodes.VncUnreachable,
            }, reason));
        }
        catch (DataConnectionFailedException e)
        {
            return (null, (VncCloseCodes.VncUnreachable, e.Message));
        }
        catch (Exception e) when (e is InvalidDataException or IOException or EndOfStreamException && !aborted.IsCancellationRequested)
        {
            data?.Finish();
            return (null, (VncCloseCodes.VncUnreachable, "the session's agent does not carry sound: " + e.Message));
        }
        catch (Exception e) when (e is System.Threading.Channels.ChannelClosedException or Npgsql.NpgsqlException or TimeoutException or InvalidOperationException
            && !aborted.IsCancellationRequested)
        {
            logger.LogWarning("Could not ask agent {AgentId} for the sound of session {SessionId}: {Reason}", agentId, sessionId, e.Message);
            return (null, (VncCloseCodes.AgentOffline, "agent not online"));
        }
        catch (OperationCanceledException) when (!aborted.IsCancellationRequested)
        {
            data?.Finish();
            return (null, (VncCloseCodes.VncUnreachable, $"the agent's audio stream did not arrive within {OpenTimeout.TotalSeconds:0}s"));
        }
        finally
        {
            streams.Forget(pending);
            if (data is null)
            {
                // A connection that arrives after this listener gave up is closed, not left waiting.
                pending.Fail("the listener is gone");
                _ = pending.Arrival.ContinueWith(t => t.Result.Finish(), CancellationToken.None, TaskContinuationOptions.OnlyOnRanToCompletion, TaskScheduler.Default);
            }
        }
    }

    /// <summary>Relays packets until the browser closes, the agent's stream ends, or the listener's right to the session ends.</summary>
    private async Task ListenAsync(WebSocket listener, Stream data, string sessionId, ClaimsPrincipal user, ShareGrant? share, CancellationToken aborted)
    {
        using var sending = new SemaphoreSlim(1, 1);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(aborted);
        // A draining replica closes its audio sockets with 4307, as its viewers, and the page opens the sound again elsewhere.
        var drained = new TaskCompletionSource<(WebSocketCloseStatus Status, string Reason)>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var tracked = drain.Track(Guid.NewGuid(), (status, reason) => drained.TrySetResult((status, reason)));
        var closedByBrowser = ReceiveUntilCloseAsync(listener, stop.Token);
        var relay = RelayAsync(data, listener, sending, stop.Token);
        var mustClose = WatchAsync(sessionId, user, share, stop.Token);
        var first = await Task.WhenAny(closedByBrowser, relay, mustClose, drained.Task);
        (WebSocketCloseStatus Status, string Reason) close = first == drained.Task
            ? drained.Task.Result
            : first == mustClose && mustClose.IsCompletedSuccessfully && mustClose.Result is { } ended
            ? ended
            : first == relay
                ? await CheckQuietlyAsync(sessionId, user, share) ?? (WebSocketCloseStatus.NormalClosure, "the session's sound ended")
                : (WebSocketCloseStatus.NormalClosure, "closed");
        // Closed with a code before the receive is cancelled: cancelling a WebSocket's receive aborts it, and the
        // browser would learn nothing. The browser answers the close, which ends the receive by itself.
        if (listener.State is WebSocketState.Open or WebSocketState.CloseReceived)
        {
            await CloseAsync(listener, sessionId, close.Status, close.Reason, sending);
            await Task.WhenAny(closedByBrowser, Task.Delay(CloseTimeout, CancellationToken.None));
        }

        await stop.CancelAsync();
        try
        {
            await Task.WhenAll(closedByBrowser, relay, mustClose).WaitAsync(CloseTimeout, CancellationToken.None);
        }
        catch (TimeoutException)
        {
            listener.Abort();
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException or IOException or ObjectDisposedException or InvalidDataException)
        {
            // One side ended; the others were cancelled with it.
        }
    }

    /// <summary>The agent's frames (a length and an Opus packet) → one binary message each.</summary>
    private static async Task RelayAsync(Stream data, WebSocket listener, SemaphoreSlim sending, CancellationToken cancellationToken)
    {
        var packet = new byte[FileStreams.MaxFrameBytes];
        while (true)
        {
            int length;
            try
            {
                length = await FileStreams.ReadFrameLengthAsync(data, cancellationToken);
            }
            catch (EndOfStreamException)
            {
                return;
            }

            await data.ReadExactlyAsync(packet.AsMemory(0, length), cancellationToken);
            await sending.WaitAsync(cancellationToken);
            try
            {
                // Not cancelled: cancelling a WebSocket's send aborts it, and the browser would lose the close that follows.
                await listener.SendAsync(packet.AsMemory(0, length), WebSocketMessageType.Binary, true, CancellationToken.None);
            }
            finally
            {
                sending.Release();
            }
        }
    }

    private static async Task ReceiveUntilCloseAsync(WebSocket listener, CancellationToken cancellationToken)
    {
        var buffer = new byte[256];
        while ((await listener.ReceiveAsync(buffer, cancellationToken)).MessageType != WebSocketMessageType.Close)
        {
            // The browser sends nothing on this socket; anything it does send is ignored.
        }
    }

    /// <summary>Completes with why the listener must close, checked every second as a viewer is, and once its viewer has gone.</summary>
    private async Task<(WebSocketCloseStatus Status, string Reason)?> WatchAsync(string sessionId, ClaimsPrincipal user, ShareGrant? share, CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(CheckEvery, time);
        var viewerDue = time.GetTimestamp() + (long)(ViewerGrace.TotalSeconds * time.TimestampFrequency);
        while (await timer.WaitForNextTickAsync(cancellationToken))
        {
            if (await viewers.CheckCompanionAsync(sessionId, user, share, cancellationToken) is { } close)
            {
                return close;
            }

            var now = time.GetTimestamp();
            if (await viewers.HasOpenViewerAsync(sessionId, user, share, cancellationToken))
            {
                // Its viewer is open: from now on only a gap counts, not what is left of the opening's grace.
                viewerDue = now + (long)(ViewerGap.TotalSeconds * time.TimestampFrequency);
            }
            else if (now >= viewerDue)
            {
                return (VncCloseCodes.Revoked, "the session's viewer was closed or revoked");
            }
        }

        return null;
    }

    private async Task<(WebSocketCloseStatus Status, string Reason)?> CheckQuietlyAsync(string sessionId, ClaimsPrincipal user, ShareGrant? share)
    {
        using var timeout = new CancellationTokenSource(CloseTimeout);
        try
        {
            return await viewers.CheckCompanionAsync(sessionId, user, share, timeout.Token);
        }
        catch (OperationCanceledException)
        {
            return null;
        }
    }

    private async Task CloseAsync(WebSocket listener, string sessionId, WebSocketCloseStatus status, string reason, SemaphoreSlim? sending)
    {
        if (status != WebSocketCloseStatus.NormalClosure)
        {
            logger.LogInformation("Audio of session {SessionId} closes: {Reason}", sessionId, reason);
        }

        using var timeout = new CancellationTokenSource(CloseTimeout);
        try
        {
            if (sending is not null)
            {
                await sending.WaitAsync(timeout.Token);
            }

            await listener.CloseOutputAsync(status, AgentSocket.TruncateCloseReason(reason), timeout.Token);
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException or ObjectDisposedException)
        {
            listener.Abort();
        }
    }
}
