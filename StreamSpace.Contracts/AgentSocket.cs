using System.Buffers;
using System.Collections.Concurrent;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using StreamSpace.Contracts.Tunnel;

namespace StreamSpace.Contracts;

/// <summary>A frame the peer sent that breaks the protocol; the control plane closes that agent's socket with 1008.</summary>
public sealed class ProtocolViolationException(string message) : Exception(message);

/// <summary>
/// One end of <c>/agent/ws</c>, the same on the control plane and on the agent. JSON messages go out through one
/// writer loop and tunnel frames are sent at once, under one lock, so frames never interleave. Receiving bounds
/// every frame, hands tunnel frames to their streams and answers the tunnel messages itself, so its owner sees
/// only the messages it must act on.
/// </summary>
public sealed class AgentSocket
{
    /// <summary>Messages queued and not yet written; a sender waits while the peer reads this far behind.</summary>
    private const int OutboxCapacity = 1024;

    private const string ConnectionClosed = "the agent's connection closed";

    private readonly WebSocket socket;
    private readonly TimeProvider time;
    private readonly Channel<byte[]> outbox = Channel.CreateBounded<byte[]>(new BoundedChannelOptions(OutboxCapacity)
    {
        SingleReader = true,
        FullMode = BoundedChannelFullMode.Wait,
    });

    private readonly SemaphoreSlim sendLock = new(1, 1);
    private readonly ConcurrentDictionary<int, TaskCompletionSource<string?>> pendingOpens = new();
    private long lastReceivedTimestamp;
    private int closing;
    private string? tunnelsClosed;

    public AgentSocket(WebSocket socket, TimeProvider time)
    {
        this.socket = socket;
        this.time = time;
        lastReceivedTimestamp = time.GetTimestamp();
        Tunnels = new TunnelMux(SendBinaryAsync);
    }

    /// <summary>The VNC streams carried on this socket.</summary>
    public TunnelMux Tunnels { get; }

    /// <summary>How long since the peer's last frame of any kind.</summary>
    public TimeSpan SinceLastReceived => time.GetElapsedTime(Interlocked.Read(ref lastReceivedTimestamp));

    /// <summary>Queues a message for the writer loop; throws <see cref="ChannelClosedException"/> once the socket is closing.</summary>
    public ValueTask SendAsync(AgentMessage message, CancellationToken cancellationToken) =>
        outbox.Writer.WriteAsync(AgentProtocol.Serialize(message), cancellationToken);

    /// <summary>Writes the queued messages until cancelled or the socket fails; then nothing more can be queued.</summary>
    public async Task RunWriterAsync(CancellationToken cancellationToken)
    {
        try
        {
            await foreach (var frame in outbox.Reader.ReadAllAsync(cancellationToken))
            {
                await sendLock.WaitAsync(cancellationToken);
                try
                {
                    await socket.SendAsync(frame, WebSocketMessageType.Text, endOfMessage: true, cancellationToken);
                }
                finally
                {
                    sendLock.Release();
                }
            }
        }
        finally
        {
            outbox.Writer.TryComplete();
        }
    }

    /// <summary>
    /// The next message for the owner, or null once the peer closed the socket. Tunnel frames and the tunnel messages
    /// (<see cref="TunnelOpenedMessage"/>, <see cref="TunnelClosedMessage"/>) met on the way are handled here.
    /// </summary>
    /// <exception cref="ProtocolViolationException">A frame is too large, or not a valid tunnel frame or message.</exception>
    public async Task<AgentMessage?> ReceiveAsync(CancellationToken cancellationToken)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(16 * 1024);
        var length = 0;
        try
        {
            while (true)
            {
                if (length == buffer.Length)
                {
                    if (buffer.Length >= AgentProtocol.MaxTextFrameBytes)
                    {
                        throw TooLarge();
                    }

                    var larger = ArrayPool<byte>.Shared.Rent(Math.Min(buffer.Length * 2, AgentProtocol.MaxTextFrameBytes));
                    buffer.AsSpan(0, length).CopyTo(larger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = larger;
                }

                var result = await socket.ReceiveAsync(buffer.AsMemory(length), cancellationToken);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    return null;
                }

                length += result.Count;
                if (length > AgentProtocol.MaxTextFrameBytes)
                {
                    throw TooLarge();
                }

                if (!result.EndOfMessage)
                {
                    continue;
                }

                Interlocked.Exchange(ref lastReceivedTimestamp, time.GetTimestamp());
                var frame = buffer.AsSpan(0, length);
                length = 0;
                if (result.MessageType == WebSocketMessageType.Binary)
                {
                    if (!Tunnels.Dispatch(frame))
                    {
                        throw new ProtocolViolationException("a binary frame is not a valid tunnel frame");
                    }

                    continue;
                }

                var message = Parse(frame);
                if (!OnTunnelMessage(message))
                {
                    return message;
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// Asks the agent to open a VNC stream to the session and waits for its answer. Returns the stream, or the
    /// agent's reason why it could not reach the session's VNC server.
    /// </summary>
    public async Task<(TunnelStream? Stream, string? Failure)> OpenTunnelAsync(string sessionId, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var stream = Tunnels.Open();
        var answer = new TaskCompletionSource<string?>(TaskCreationOptions.RunContinuationsAsynchronously);
        pendingOpens[stream.Id] = answer;
        // An open that starts as the socket closes fails at once, not at its timeout: either CloseTunnels sees it
        // among the pending ones, or it sees that CloseTunnels ran.
        if (Volatile.Read(ref tunnelsClosed) is { } closedReason)
        {
            answer.TrySetResult(closedReason);
        }

        try
        {
            await SendAsync(new TunnelOpenMessage(stream.Id, sessionId), cancellationToken);
            var failure = await answer.Task.WaitAsync(timeout, cancellationToken);
            if (failure is null)
            {
                return (stream, null);
            }
        }
        catch (TimeoutException)
        {
            await CloseTunnelAsync(stream.Id, "timed out");
            return (null, $"the agent did not open the tunnel within {timeout.TotalSeconds:0}s");
        }
        catch (ChannelClosedException)
        {
            Tunnels.Remove(stream.Id, ConnectionClosed);
            return (null, ConnectionClosed);
        }
        finally
        {
            pendingOpens.TryRemove(stream.Id, out _);
        }

        var reason = answer.Task.Result;
        Tunnels.Remove(stream.Id, reason!);
        return (null, reason);
    }

    /// <summary>Ends a stream on both ends: here at once, and at the peer by a <see cref="TunnelClosedMessage"/>, if the socket is still open.</summary>
    public async Task CloseTunnelAsync(int streamId, string reason)
    {
        Tunnels.Remove(streamId, reason);
        try
        {
            await SendAsync(new TunnelClosedMessage(streamId, reason), CancellationToken.None);
        }
        catch (ChannelClosedException)
        {
            // The socket is closing: the peer's side of the stream goes with it.
        }
    }

    /// <summary>Ends every stream here, e.g. because the socket closed.</summary>
    public void CloseTunnels(string reason)
    {
        Volatile.Write(ref tunnelsClosed, reason);
        foreach (var answer in pendingOpens.Values)
        {
            answer.TrySetResult(reason);
        }

        Tunnels.CloseAll(reason);
    }

    /// <summary>Closes with a code and reason the peer logs; aborts if the peer does not answer within a few seconds.</summary>
    public async Task CloseAsync(WebSocketCloseStatus status, string reason)
    {
        if (Interlocked.Exchange(ref closing, 1) == 1)
        {
            return;
        }

        outbox.Writer.TryComplete();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(3));
        try
        {
            await sendLock.WaitAsync(timeout.Token);
            try
            {
                if (socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
                {
                    await socket.CloseOutputAsync(status, TruncateCloseReason(reason), timeout.Token);
                }
            }
            finally
            {
                sendLock.Release();
            }
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException or ObjectDisposedException)
        {
            socket.Abort();
        }
    }

    /// <summary>
    /// A close reason must fit in a control frame: at most 123 bytes of UTF-8. A longer one is cut at a character
    /// boundary and ends in "...".
    /// </summary>
    public static string TruncateCloseReason(string reason)
    {
        const int kept = 120;
        const string ellipsis = "...";
        if (Encoding.UTF8.GetByteCount(reason) <= kept)
        {
            return reason;
        }

        var bytes = 0;
        var end = 0;
        while (end < reason.Length)
        {
            var width = char.IsSurrogatePair(reason, end) ? 2 : 1;
            var size = Encoding.UTF8.GetByteCount(reason.AsSpan(end, width));
            if (bytes + size > kept - ellipsis.Length)
            {
                break;
            }

            bytes += size;
            end += width;
        }

        return reason[..end] + ellipsis;
    }

    private async ValueTask SendBinaryAsync(ReadOnlyMemory<byte> frame, CancellationToken cancellationToken)
    {
        // Sent at once, not queued: the stream's credit already bounds how much is in flight.
        await sendLock.WaitAsync(cancellationToken);
        try
        {
            await socket.SendAsync(frame, WebSocketMessageType.Binary, endOfMessage: true, cancellationToken);
        }
        finally
        {
            sendLock.Release();
        }
    }

    /// <summary>Handles the peer's answer to <see cref="OpenTunnelAsync"/>, or its notice that a stream ended; false for any other message.</summary>
    private bool OnTunnelMessage(AgentMessage message)
    {
        switch (message)
        {
            case TunnelOpenedMessage opened:
                if (pendingOpens.TryGetValue(opened.StreamId, out var opening))
                {
                    opening.TrySetResult(null);
                }

                return true;
            case TunnelClosedMessage closed when pendingOpens.TryGetValue(closed.StreamId, out var refused):
                refused.TrySetResult(closed.Reason);
                return true;
            case TunnelClosedMessage closed:
                Tunnels.Remove(closed.StreamId, closed.Reason);
                return true;
            default:
                return false;
        }
    }

    private static AgentMessage Parse(ReadOnlySpan<byte> frame)
    {
        try
        {
            return AgentProtocol.Deserialize(frame);
        }
        catch (JsonException e)
        {
            throw new ProtocolViolationException($"a frame is not a valid message: {e.Message}");
        }
    }

    private static ProtocolViolationException TooLarge() =>
        new($"a frame is larger than the {AgentProtocol.MaxTextFrameBytes / 1024} KiB limit");
}
