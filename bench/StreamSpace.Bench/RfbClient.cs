using System.Buffers.Binary;
using System.Net.Sockets;
using System.Net.WebSockets;
using StreamSpace.Agent.Tunnel;
using StreamSpace.Contracts.Tunnel;

namespace StreamSpace.Bench;

/// <summary>A byte stream over a binary WebSocket, so every path runs the same RFB client.</summary>
public sealed class WebSocketStream(ClientWebSocket socket) : DuplexStream
{
    private readonly byte[] buffer = new byte[256 * 1024];
    private int offset;
    private int count;

    public override async ValueTask<int> ReadAsync(Memory<byte> destination, CancellationToken cancellationToken = default)
    {
        if (count == 0)
        {
            var result = await socket.ReceiveAsync(buffer, cancellationToken);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                return 0;
            }

            offset = 0;
            count = result.Count;
        }

        var n = Math.Min(count, destination.Length);
        buffer.AsMemory(offset, n).CopyTo(destination);
        offset += n;
        count -= n;
        return n;
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> source, CancellationToken cancellationToken = default) =>
        socket.SendAsync(source, WebSocketMessageType.Binary, true, cancellationToken);

    protected override void Dispose(bool disposing)
    {
        socket.Dispose();
        base.Dispose(disposing);
    }
}

/// <summary>An RFB 3.8 client: handshake, Raw encoding, full-screen updates for throughput, 1×1 updates for round trips.</summary>
public sealed class RfbClient(Stream stream) : IAsyncDisposable
{
    private readonly byte[] skip = new byte[1024 * 1024];
    private int width;
    private int height;

    public static async Task<RfbClient> DirectAsync(int port, string password)
    {
        var tcp = new TcpClient { NoDelay = true };
        await tcp.ConnectAsync("127.0.0.1", port);
        var stream = tcp.GetStream();
        await RfbBridge.AuthenticateToServerAsync(stream, password, CancellationToken.None);
        return await new RfbClient(stream).InitAsync();
    }

    public static async Task<RfbClient> WebSocketAsync(Uri url, string? password)
    {
        var socket = new ClientWebSocket();
        socket.Options.AddSubProtocol("binary");
        await socket.ConnectAsync(url, CancellationToken.None);
        var stream = new WebSocketStream(socket);
        if (password is not null)
        {
            await RfbBridge.AuthenticateToServerAsync(stream, password, CancellationToken.None);
        }
        else
        {
            await NoneAuthAsync(stream);
        }

        return await new RfbClient(stream).InitAsync();
    }

    /// <summary>The viewer's side of security type None, as the agent offers it on path (c).</summary>
    public static async Task NoneAuthAsync(Stream stream)
    {
        var version = new byte[12];
        await stream.ReadExactlyAsync(version);
        await stream.WriteAsync("RFB 003.008\n"u8.ToArray());
        var n = new byte[1];
        await stream.ReadExactlyAsync(n);
        await stream.ReadExactlyAsync(new byte[n[0]]);
        await stream.WriteAsync(new byte[] { 1 });
        await stream.ReadExactlyAsync(new byte[4]);
    }

    private async Task<RfbClient> InitAsync()
    {
        await stream.WriteAsync(new byte[] { 1 });
        var init = new byte[24];
        await stream.ReadExactlyAsync(init);
        width = BinaryPrimitives.ReadUInt16BigEndian(init);
        height = BinaryPrimitives.ReadUInt16BigEndian(init.AsSpan(2));
        await stream.ReadExactlyAsync(new byte[BinaryPrimitives.ReadUInt32BigEndian(init.AsSpan(20))]);
        await UseEncodingsAsync(Raw);
        return this;
    }

    public const int Raw = 0;
    public const int Zrle = 16;

    /// <summary>SetEncodings, in order of preference. Only Raw and ZRLE can be read here (ZRLE is skipped by its length).</summary>
    public async Task UseEncodingsAsync(params int[] encodings)
    {
        var message = new byte[4 + 4 * encodings.Length];
        message[0] = 2;
        BinaryPrimitives.WriteUInt16BigEndian(message.AsSpan(2), (ushort)encodings.Length);
        for (var i = 0; i < encodings.Length; i++)
        {
            BinaryPrimitives.WriteInt32BigEndian(message.AsSpan(4 + 4 * i), encodings[i]);
        }

        await stream.WriteAsync(message);
    }

    /// <summary>Asks for what changed on the whole screen since the last update and reads it; returns the bytes on the wire.</summary>
    public Task<long> IncrementalAsync() => UpdateAsync(width, height, incremental: true);

    /// <summary>Requests a non-incremental update of the region and reads it; returns the pixel bytes received.</summary>
    public async Task<long> UpdateAsync(int w, int h, bool incremental = false)
    {
        var request = new byte[10];
        request[0] = 3;
        request[1] = incremental ? (byte)1 : (byte)0;
        BinaryPrimitives.WriteUInt16BigEndian(request.AsSpan(6), (ushort)w);
        BinaryPrimitives.WriteUInt16BigEndian(request.AsSpan(8), (ushort)h);
        await stream.WriteAsync(request);

        var header = new byte[4];
        await stream.ReadExactlyAsync(header);
        long total = header.Length;
        var rect = new byte[12];
        for (var i = BinaryPrimitives.ReadUInt16BigEndian(header.AsSpan(2)); i > 0; i--)
        {
            await stream.ReadExactlyAsync(rect);
            long bytes = BinaryPrimitives.ReadUInt16BigEndian(rect.AsSpan(4)) * BinaryPrimitives.ReadUInt16BigEndian(rect.AsSpan(6)) * 4;
            if (BinaryPrimitives.ReadInt32BigEndian(rect.AsSpan(8)) == Zrle)
            {
                var length = new byte[4];
                await stream.ReadExactlyAsync(length);
                bytes = BinaryPrimitives.ReadUInt32BigEndian(length);
                total += 4;
            }

            for (var left = bytes; left > 0;)
            {
                var n = await stream.ReadAsync(skip.AsMemory(0, (int)Math.Min(left, skip.Length)));
                if (n == 0)
                {
                    throw new EndOfStreamException();
                }

                left -= n;
            }

            total += 12 + bytes;
        }

        return total;
    }

    public Task<long> FullScreenAsync() => UpdateAsync(width, height);

    public async ValueTask DisposeAsync() => await stream.DisposeAsync();
}
