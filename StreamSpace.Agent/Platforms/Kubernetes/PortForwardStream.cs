using System.Buffers;
using System.Buffers.Binary;
using System.Net.WebSockets;
using System.Text;

namespace StreamSpace.Agent.Platforms.Kubernetes;

/// <summary>
/// One forwarded port of a pods/portforward WebSocket (subprotocol v4.channel.k8s.io) as a full-duplex stream.
/// Each message starts with its channel byte: channel 0 carries the port's data, channel 1 the API server's error text
/// about it. The first message on each channel from the server starts with the port as two little-endian bytes.
/// KubernetesClient's StreamDemuxer frames the same protocol, but its streams only implement synchronous Read and Write,
/// and the base Stream serialises their async calls, so a read that waits for the VNC server would hold back every
/// write from the viewer; hence this small async implementation of the framing.
/// </summary>
public sealed class PortForwardStream(WebSocket socket, int port) : Stream
{
    private const byte DataChannel = 0;
    private const byte ErrorChannel = 1;
    private const int PortHeaderLength = 2;
    private static readonly TimeSpan CloseTimeout = TimeSpan.FromSeconds(2);

    private readonly byte[] receiveBuffer = new byte[64 * 1024];
    private readonly bool[] portHeaderSeen = new bool[2];
    private readonly StringBuilder error = new();
    private int pendingOffset;
    private int pendingCount;
    private byte currentChannel;
    private bool inMessage;
    private int disposed;

    public override bool CanRead => true;

    public override bool CanWrite => true;

    public override bool CanSeek => false;

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        while (pendingCount == 0)
        {
            if (!await ReceiveAsync(cancellationToken))
            {
                return 0;
            }
        }

        var count = Math.Min(buffer.Length, pendingCount);
        receiveBuffer.AsMemory(pendingOffset, count).CopyTo(buffer);
        pendingOffset += count;
        pendingCount -= count;
        return count;
    }

    /// <summary>Receives one frame; data for the port becomes pending. False at the end of the stream.</summary>
    private async Task<bool> ReceiveAsync(CancellationToken cancellationToken)
    {
        ValueWebSocketReceiveResult result;
        try
        {
            result = await socket.ReceiveAsync(receiveBuffer.AsMemory(), cancellationToken);
        }
        catch (WebSocketException e)
        {
            // A stream's readers expect IOException for a cut connection (the relays end on it), not the WebSocket's own.
            throw new IOException($"port-forward to port {port} was cut: {e.Message}", e);
        }

        if (result.MessageType == WebSocketMessageType.Close)
        {
            // The kubelet reports a failure (e.g. nothing listens on the port) on the error channel, then closes.
            return error.Length == 0 ? false : throw new IOException($"port-forward to port {port} failed: {error.ToString().Trim()}");
        }

        var offset = 0;
        if (!inMessage)
        {
            if (result.Count == 0)
            {
                return true;
            }

            currentChannel = receiveBuffer[0];
            offset = 1;
        }

        inMessage = !result.EndOfMessage;
        if (currentChannel is not (DataChannel or ErrorChannel))
        {
            throw new InvalidDataException($"port-forward sent channel {currentChannel}; one port has only channels 0 and 1");
        }

        if (!portHeaderSeen[currentChannel])
        {
            // Assumes the header arrives whole in the channel's first frame, as the kubelet writes it.
            if (result.Count - offset < PortHeaderLength)
            {
                return true;
            }

            var announced = BinaryPrimitives.ReadUInt16LittleEndian(receiveBuffer.AsSpan(offset, PortHeaderLength));
            if (announced != port)
            {
                throw new InvalidDataException($"port-forward announced port {announced} where {port} was asked for");
            }

            portHeaderSeen[currentChannel] = true;
            offset += PortHeaderLength;
        }

        if (currentChannel == ErrorChannel)
        {
            error.Append(Encoding.UTF8.GetString(receiveBuffer, offset, result.Count - offset));
            if (!inMessage && error.Length > 0)
            {
                throw new IOException($"port-forward to port {port} failed: {error.ToString().Trim()}");
            }

            return true;
        }

        pendingOffset = offset;
        pendingCount = result.Count - offset;
        return true;
    }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        const int MaxPayload = 32 * 1024;
        var frame = ArrayPool<byte>.Shared.Rent(Math.Min(buffer.Length, MaxPayload) + 1);
        try
        {
            frame[0] = DataChannel;
            for (var start = 0; start < buffer.Length; start += MaxPayload)
            {
                var chunk = buffer.Slice(start, Math.Min(MaxPayload, buffer.Length - start));
                chunk.CopyTo(frame.AsMemory(1));
                await socket.SendAsync(frame.AsMemory(0, chunk.Length + 1), WebSocketMessageType.Binary, endOfMessage: true, cancellationToken);
            }
        }
        catch (WebSocketException e)
        {
            throw new IOException($"port-forward to port {port} was cut: {e.Message}", e);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(frame);
        }
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer, offset, count).GetAwaiter().GetResult();

    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer, offset, count).GetAwaiter().GetResult();

    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public override void Flush()
    {
        // Every write is sent as its own WebSocket message at once.
    }

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref disposed, 1) == 1)
        {
            return;
        }

        if (socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
        {
            using var timeout = new CancellationTokenSource(CloseTimeout);
            try
            {
                await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, timeout.Token);
            }
            catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException)
            {
                // The API server is gone already; disposing below releases the connection either way.
            }
        }

        socket.Dispose();
        await base.DisposeAsync();
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing && Interlocked.Exchange(ref disposed, 1) == 0)
        {
            socket.Dispose();
        }

        base.Dispose(disposing);
    }
}
