using System.Buffers.Binary;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;

namespace StreamSpace.Bench;

/// <summary>
/// The paced viewers' WebSocket client: a blocking socket, one 256 KiB receive buffer, and frame headers parsed in place,
/// so a receive of up to 256 KiB carries several frames and no payload is copied while counting. ClientWebSocket cost
/// the receivers more CPU than websockify spent relaying (several small reads per frame, async continuations on a
/// 2-core machine), which made the harness, not the relay, the limit of the 50-viewer figure. Everything is synchronous
/// on the viewer's own thread; the async overrides complete synchronously, so the RFB handshake helpers work unchanged.
/// Servers send no masked frames; pings are not answered (neither websockify nor the API pings within a run).
/// </summary>
public sealed class RawWebSocket : Stream
{
    private const int MaxControlFrame = 2 + 125;
    private const int TimedOut = -1;
    private readonly Socket socket;
    private readonly byte[] buffer = new byte[256 * 1024];
    private int start;
    private int end;
    private long payloadLeft;
    private bool closed;

    private RawWebSocket(Socket socket) => this.socket = socket;

    /// <summary>Connects and upgrades with subprotocol "binary", checking the server's Sec-WebSocket-Accept.</summary>
    public static RawWebSocket Connect(Uri url, TimeSpan limit)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true, ReceiveTimeout = (int)limit.TotalMilliseconds, SendTimeout = (int)limit.TotalMilliseconds };
        try
        {
            socket.Connect(url.Host, url.Port);
            var key = Convert.ToBase64String(RandomNumberGenerator.GetBytes(16));
            socket.Send(Encoding.ASCII.GetBytes($"GET {url.PathAndQuery} HTTP/1.1\r\nHost: {url.Authority}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
                $"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: binary\r\n\r\n"));
            var webSocket = new RawWebSocket(socket);
            var headers = webSocket.ReadResponseHeaders();
            var accept = Convert.ToBase64String(SHA1.HashData(Encoding.ASCII.GetBytes(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")));
            if (!headers.StartsWith("HTTP/1.1 101", StringComparison.Ordinal) || !headers.Contains(accept, StringComparison.Ordinal))
            {
                throw new InvalidOperationException($"{url.GetLeftPart(UriPartial.Path)} refused the WebSocket upgrade: {headers.Split("\r\n")[0]}");
            }

            return webSocket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Receives count payload bytes without copying them; fails if they do not arrive in time.</summary>
    public void Drain(long count, TimeSpan limit, string what)
    {
        var deadline = DateTime.UtcNow + limit;
        while (count > 0)
        {
            var available = PayloadInBuffer();
            if (available > 0)
            {
                var n = (int)Math.Min(available, count);
                Consume(n);
                count -= n;
                continue;
            }

            var left = deadline - DateTime.UtcNow;
            var received = closed ? 0 : left <= TimeSpan.Zero ? TimedOut : Receive(left);
            if (received == TimedOut)
            {
                throw new TimeoutException($"{what}: the bytes did not arrive within {limit.TotalSeconds:0} s ({count:N0} still to come)");
            }

            if (received == 0)
            {
                throw new EndOfStreamException($"{what}: the path closed with {count:N0} bytes still to come");
            }
        }
    }

    public override int Read(byte[] destination, int offset, int count) => Read(destination.AsSpan(offset, count));

    public override int Read(Span<byte> destination)
    {
        while (true)
        {
            var available = PayloadInBuffer();
            if (available > 0)
            {
                var n = Math.Min(available, destination.Length);
                buffer.AsSpan(start, n).CopyTo(destination);
                Consume(n);
                return n;
            }

            if (closed || Receive(TimeSpan.FromMilliseconds(socket.ReceiveTimeout)) <= 0)
            {
                return 0;
            }
        }
    }

    public override ValueTask<int> ReadAsync(Memory<byte> destination, CancellationToken cancellationToken = default) => ValueTask.FromResult(Read(destination.Span));

    public override void Write(byte[] source, int offset, int count) => Write(source.AsSpan(offset, count));

    /// <summary>One masked binary frame.</summary>
    public override void Write(ReadOnlySpan<byte> payload)
    {
        var headerLength = payload.Length < 126 ? 2 : payload.Length <= ushort.MaxValue ? 4 : 10;
        var frame = new byte[headerLength + 4 + payload.Length];
        frame[0] = 0x82;
        if (headerLength == 2)
        {
            frame[1] = (byte)(0x80 | payload.Length);
        }
        else if (headerLength == 4)
        {
            frame[1] = 0x80 | 126;
            BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(2), (ushort)payload.Length);
        }
        else
        {
            frame[1] = 0x80 | 127;
            BinaryPrimitives.WriteUInt64BigEndian(frame.AsSpan(2), (ulong)payload.Length);
        }

        var mask = frame.AsSpan(headerLength, 4);
        RandomNumberGenerator.Fill(mask);
        for (var i = 0; i < payload.Length; i++)
        {
            frame[headerLength + 4 + i] = (byte)(payload[i] ^ mask[i % 4]);
        }

        for (var sent = 0; sent < frame.Length;)
        {
            sent += socket.Send(frame, sent, frame.Length - sent, SocketFlags.None);
        }
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> source, CancellationToken cancellationToken = default)
    {
        Write(source.Span);
        return ValueTask.CompletedTask;
    }

    public override void Flush()
    {
    }

    public override bool CanRead => true;

    public override bool CanWrite => true;

    public override bool CanSeek => false;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            socket.Dispose();
        }

        base.Dispose(disposing);
    }

    private string ReadResponseHeaders()
    {
        while (true)
        {
            var headerEnd = buffer.AsSpan(0, end).IndexOf("\r\n\r\n"u8);
            if (headerEnd >= 0)
            {
                start = headerEnd + 4;
                return Encoding.ASCII.GetString(buffer, 0, headerEnd);
            }

            if (end == buffer.Length || Receive(TimeSpan.FromMilliseconds(socket.ReceiveTimeout)) <= 0)
            {
                throw new InvalidOperationException("the server closed the connection during the WebSocket upgrade");
            }
        }
    }

    /// <summary>The payload bytes of the current data frame at the buffer's start, after parsing any headers there; 0 if more must be received.</summary>
    private int PayloadInBuffer()
    {
        while (payloadLeft == 0 && !closed)
        {
            var have = end - start;
            if (have < 2)
            {
                return 0;
            }

            var opcode = buffer[start] & 0x0F;
            var length7 = buffer[start + 1] & 0x7F;
            var headerLength = length7 == 126 ? 4 : length7 == 127 ? 10 : 2;
            if (have < headerLength)
            {
                return 0;
            }

            var length = length7 switch
            {
                126 => BinaryPrimitives.ReadUInt16BigEndian(buffer.AsSpan(start + 2)),
                127 => (long)BinaryPrimitives.ReadUInt64BigEndian(buffer.AsSpan(start + 2)),
                _ => length7,
            };
            if (opcode >= 8)
            {
                // A control frame (≤ 125 bytes): close ends the stream; ping and pong are skipped whole.
                if (have < headerLength + length)
                {
                    return 0;
                }

                closed = opcode == 8;
                start += headerLength + (int)length;
                continue;
            }

            start += headerLength;
            payloadLeft = length;
        }

        return (int)Math.Min(payloadLeft, end - start);
    }

    private void Consume(int n)
    {
        start += n;
        payloadLeft -= n;
    }

    /// <summary>One receive into the buffer's free end, after moving what is left to the front: the bytes received, 0 at end of stream, or <see cref="TimedOut"/>.</summary>
    private int Receive(TimeSpan limit)
    {
        if (start == end)
        {
            start = end = 0;
        }
        else if (buffer.Length - end < MaxControlFrame + 8)
        {
            buffer.AsSpan(start, end - start).CopyTo(buffer);
            (start, end) = (0, end - start);
        }

        socket.ReceiveTimeout = Math.Max(1, (int)limit.TotalMilliseconds);
        try
        {
            var read = socket.Receive(buffer, end, buffer.Length - end, SocketFlags.None);
            end += read;
            return read;
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.TimedOut)
        {
            return TimedOut;
        }
    }
}
