using System.Buffers;
using System.Net.WebSockets;
using System.Text.Json;
using System.Threading.Channels;
using StreamSpace.Contracts;

namespace StreamSpace.Api.Features.Agents.Hub;

/// <summary>A frame the agent sent that breaks the protocol. The hub closes that agent's socket with 1008.</summary>
public sealed class ProtocolViolationException(string message) : Exception(message);

/// <summary>
/// One agent's WebSocket. Sends go through one writer loop, so frames never interleave; receives parse and
/// bound every text frame.
/// </summary>
public sealed class AgentConnection(string agentId, WebSocket socket, TimeProvider time)
{
    private readonly Channel<byte[]> outbox = Channel.CreateBounded<byte[]>(new BoundedChannelOptions(1024)
    {
        SingleReader = true,
        FullMode = BoundedChannelFullMode.Wait,
    });

    private readonly SemaphoreSlim sendLock = new(1, 1);
    private long lastSeenTimestamp = time.GetTimestamp();
    private int closing;

    public string AgentId { get; } = agentId;

    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Serialises command delivery, so a reconnect's re-send and a new command's send do not race.</summary>
    public SemaphoreSlim DeliveryLock { get; } = new(1, 1);

    public TimeSpan SinceLastSeen => time.GetElapsedTime(Interlocked.Read(ref lastSeenTimestamp));

    public ValueTask SendAsync(AgentMessage message, CancellationToken cancellationToken) =>
        outbox.Writer.WriteAsync(AgentProtocol.Serialize(message), cancellationToken);

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

                if (result.MessageType == WebSocketMessageType.Binary)
                {
                    throw new ProtocolViolationException("a binary frame arrived, but no tunnel is open");
                }

                length += result.Count;
                if (length > AgentProtocol.MaxTextFrameBytes)
                {
                    throw new ProtocolViolationException($"a frame is larger than the {AgentProtocol.MaxTextFrameBytes / 1024} KiB limit");
                }

                if (result.EndOfMessage)
                {
                    break;
                }
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
