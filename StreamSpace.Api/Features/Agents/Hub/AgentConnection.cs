using System.Buffers;
using System.Net.WebSockets;
using System.Text.Json;
using System.Threading.Channels;
using System.Collections.Concurrent;
using StreamSpace.Contracts;
using StreamSpace.Contracts.Tunnel;

namespace StreamSpace.Api.Features.Agents.Hub;

/// <summary>A frame the agent sent that breaks the protocol. The hub closes that agent's socket with 1008.</summary>
public sealed class ProtocolViolationException(string message) : Exception(message);

/// <summary>
/// One agent's WebSocket. Sends go through one writer loop, so frames never interleave; receives parse and
/// bound every text frame.
/// </summary>
/// <param name="keyHash">The hash of the key this connection authenticated with, checked again at hello and each heartbeat.</param>
public sealed class AgentConnection(string agentId, string keyHash, WebSocket socket, TimeProvider time)
{
    private readonly Channel<byte[]> outbox = Channel.CreateBounded<byte[]>(new BoundedChannelOptions(1024)
    {
        SingleReader = true,
        FullMode = BoundedChannelFullMode.Wait,
    });

    private readonly SemaphoreSlim sendLock = new(1, 1);
    private readonly ConcurrentDictionary<int, TaskCompletionSource<string?>> pendingOpens = new();
    private long lastSeenTimestamp = time.GetTimestamp();
    private int closing;
    private TunnelMux? tunnels;

    /// <summary>The VNC streams carried on this socket.</summary>
    public TunnelMux Tunnels => tunnels ??= new TunnelMux(SendBinaryAsync);

    public string AgentId { get; } = agentId;

    public string KeyHash { get; } = keyHash;

    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Serialises command delivery, so a reconnect's re-send and a new command's send do not race.</summary>
    public SemaphoreSlim DeliveryLock { get; } = new(1, 1);

    public TimeSpan SinceLastSeen => time.GetElapsedTime(Interlocked.Read(ref lastSeenTimestamp));

    public ValueTask SendAsync(AgentMessage message, CancellationToken cancellationToken) =>
        outbox.Writer.WriteAsync(AgentProtocol.Serialize(message), cancellationToken);

    /// <summary>
    /// Asks the agent to open a VNC stream to the session and waits for its answer. Returns the stream, or the
    /// agent's reason why it could not reach the session's VNC server.
    /// </summary>
    public async Task<(TunnelStream? Stream, string? Failure)> OpenTunnelAsync(string sessionId, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var stream = Tunnels.Open();
        var answer = new TaskCompletionSource<string?>(TaskCreationOptions.RunContinuationsAsynchronously);
        pendingOpens[stream.Id] = answer;
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
            await SendAsync(new TunnelClosedMessage(stream.Id, "timed out"), CancellationToken.None);
            Tunnels.Remove(stream.Id, "timed out");
            return (null, $"the agent did not open the tunnel within {timeout.TotalSeconds:0}s");
        }
        finally
        {
            pendingOpens.TryRemove(stream.Id, out _);
        }

        var reason = answer.Task.Result;
        Tunnels.Remove(stream.Id, reason!);
        return (null, reason);
    }

    /// <summary>The agent's answer to <see cref="OpenTunnelAsync"/>, or its notice that a stream ended.</summary>
    public void OnTunnelMessage(AgentMessage message)
    {
        switch (message)
        {
            case TunnelOpenedMessage opened when pendingOpens.TryGetValue(opened.StreamId, out var answer):
                answer.TrySetResult(null);
                break;
            case TunnelClosedMessage closed when pendingOpens.TryGetValue(closed.StreamId, out var answer):
                answer.TrySetResult(closed.Reason);
                break;
            case TunnelClosedMessage closed:
                Tunnels.Remove(closed.StreamId, closed.Reason);
                break;
        }
    }

    /// <summary>Sends a tunnel frame now: the stream's credit already bounds how much is in flight.</summary>
    private async ValueTask SendBinaryAsync(ReadOnlyMemory<byte> frame, CancellationToken cancellationToken)
    {
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

    public async Task RunWriterAsync(CancellationToken cancellationToken)
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

    /// <summary>The next message, or null once the agent closed the socket.</summary>
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
                        throw new ProtocolViolationException($"a frame is larger than the {AgentProtocol.MaxTextFrameBytes / 1024} KiB limit");
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
                    throw new ProtocolViolationException($"a frame is larger than the {AgentProtocol.MaxTextFrameBytes / 1024} KiB limit");
                }

                if (!result.EndOfMessage)
                {
                    continue;
                }

                if (result.MessageType != WebSocketMessageType.Binary)
                {
                    break;
                }

                if (!Tunnels.Dispatch(buffer.AsSpan(0, length)))
                {
                    throw new ProtocolViolationException("a binary frame is not a valid tunnel frame");
                }

                Interlocked.Exchange(ref lastSeenTimestamp, time.GetTimestamp());
                length = 0;
            }

            Interlocked.Exchange(ref lastSeenTimestamp, time.GetTimestamp());
            try
            {
                return AgentProtocol.Deserialize(buffer.AsSpan(0, length));
            }
            catch (JsonException e)
            {
                throw new ProtocolViolationException($"a frame is not a valid message: {e.Message}");
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Ends every stream, e.g. because the socket closed.</summary>
    public void CloseTunnels(string reason)
    {
        foreach (var answer in pendingOpens.Values)
        {
            answer.TrySetResult(reason);
        }

        Tunnels.CloseAll(reason);
    }

    /// <summary>Closes with a code and reason the agent logs; aborts if the agent does not answer within a few seconds.</summary>
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
                    await socket.CloseOutputAsync(status, Truncate(reason), timeout.Token);
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

    // A close reason must fit in a control frame: 123 bytes of UTF-8.
    private static string Truncate(string reason) => reason.Length <= 120 ? reason : reason[..117] + "...";
}
