using System.Buffers.Binary;
using System.Net.WebSockets;
using System.Text;

namespace StreamSpace.Tests.Infrastructure;

/// <summary>What the VNC server said in ServerInit.</summary>
public sealed record RfbDesktop(int Width, int Height, string Name);

/// <summary>A minimal RFB 3.8 viewer over the /vnc WebSocket, doing what noVNC does up to the first framebuffer update.</summary>
public sealed class RfbViewer(ClientWebSocket socket) : IDisposable
{
    private readonly byte[] receiveBuffer = new byte[256 * 1024];
    private readonly Queue<byte> pending = new();

    public ClientWebSocket Socket => socket;

    public static async Task<RfbViewer> ConnectAsync(Uri apiBase, string url)
    {
        var socket = new ClientWebSocket();
        socket.Options.AddSubProtocol("binary");
        socket.Options.CollectHttpResponseDetails = true;
        await socket.ConnectAsync(new Uri(new UriBuilder(apiBase) { Scheme = "ws" }.Uri, url), CancellationToken.None);
        return new RfbViewer(socket);
    }

    /// <summary>Version, security (None, as the agent offers), ClientInit and ServerInit.</summary>
    public async Task<RfbDesktop> HandshakeAsync()
    {
        var version = Encoding.ASCII.GetString(await ReadAsync(12));
        Assert.Equal("RFB 003.008\n", version);
        await SendAsync(Encoding.ASCII.GetBytes("RFB 003.008\n"));
        var types = await ReadAsync((await ReadAsync(1))[0]);
        Assert.Equal([1], types);
        await SendAsync([1]);
        Assert.Equal(0u, BinaryPrimitives.ReadUInt32BigEndian(await ReadAsync(4)));
        await SendAsync([1]); // ClientInit: shared

        var init = await ReadAsync(24);
        var nameLength = (int)BinaryPrimitives.ReadUInt32BigEndian(init.AsSpan(20));
        var name = Encoding.UTF8.GetString(await ReadAsync(nameLength));
        return new RfbDesktop(BinaryPrimitives.ReadUInt16BigEndian(init), BinaryPrimitives.ReadUInt16BigEndian(init.AsSpan(2)), name);
    }

    /// <summary>Asks for the whole screen and reads the header of the FramebufferUpdate that answers.</summary>
    public async Task<(int Rectangles, int Width, int Height)> RequestFullUpdateAsync(RfbDesktop desktop)
    {
        var request = new byte[10];
        request[0] = 3; // FramebufferUpdateRequest
        request[1] = 0; // not incremental
        BinaryPrimitives.WriteUInt16BigEndian(request.AsSpan(6), (ushort)desktop.Width);
        BinaryPrimitives.WriteUInt16BigEndian(request.AsSpan(8), (ushort)desktop.Height);
        await SendAsync(request);

        var header = await ReadAsync(4);
        Assert.Equal(0, header[0]); // FramebufferUpdate
        var rectangles = BinaryPrimitives.ReadUInt16BigEndian(header.AsSpan(2));
        var first = await ReadAsync(12);
        return (rectangles, BinaryPrimitives.ReadUInt16BigEndian(first.AsSpan(4)), BinaryPrimitives.ReadUInt16BigEndian(first.AsSpan(6)));
    }

    /// <summary>Asks for Raw encoding only, so an update's size follows from its rectangles.</summary>
    public Task UseRawEncodingAsync() => SendAsync([2, 0, 0, 1, 0, 0, 0, 0]);

    /// <summary>Requests the whole screen and reads the complete Raw update (4 bytes a pixel); returns its size in bytes.</summary>
    public async Task<long> ReadFullRawUpdateAsync(RfbDesktop desktop)
    {
        var request = new byte[10];
        request[0] = 3;
        BinaryPrimitives.WriteUInt16BigEndian(request.AsSpan(6), (ushort)desktop.Width);
        BinaryPrimitives.WriteUInt16BigEndian(request.AsSpan(8), (ushort)desktop.Height);
        await SendAsync(request);

        var header = await ReadAsync(4);
        Assert.Equal(0, header[0]);
        long total = 0;
        for (var i = BinaryPrimitives.ReadUInt16BigEndian(header.AsSpan(2)); i > 0; i--)
        {
            var rect = await ReadAsync(12);
            Assert.Equal(0, BinaryPrimitives.ReadInt32BigEndian(rect.AsSpan(8))); // Raw
            var bytes = BinaryPrimitives.ReadUInt16BigEndian(rect.AsSpan(4)) * BinaryPrimitives.ReadUInt16BigEndian(rect.AsSpan(6)) * 4;
            await SkipAsync(bytes);
            total += bytes;
        }

        return total;
    }

    private async Task SkipAsync(int count)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (pending.Count > 0 && count > 0)
        {
            pending.Dequeue();
            count--;
        }

        while (count > 0)
        {
            var result = await socket.ReceiveAsync(receiveBuffer, cts.Token);
            var used = Math.Min(count, result.Count);
            foreach (var b in receiveBuffer.AsSpan(used, result.Count - used))
            {
                pending.Enqueue(b);
            }

            count -= used;
        }
    }

    /// <summary>
    /// Types <paramref name="text"/> as RFB KeyEvents, a press and a release per character ('\n' is Return); printable
    /// ASCII characters are their own keysyms, and Xvnc adds the Shift a character needs.
    /// </summary>
    public async Task TypeAsync(string text)
    {
        foreach (var character in text)
        {
            var keysym = character == '\n' ? 0xff0du : character;
            foreach (var down in new[] { true, false })
            {
                var message = new byte[8];
                message[0] = 4; // KeyEvent
                message[1] = down ? (byte)1 : (byte)0;
                BinaryPrimitives.WriteUInt32BigEndian(message.AsSpan(4), keysym);
                await SendAsync(message);
            }
        }
    }

    public Task SendAsync(byte[] bytes) => socket.SendAsync(bytes, WebSocketMessageType.Binary, true, CancellationToken.None);

    public async Task<byte[]> ReadAsync(int count, TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(15));
        while (pending.Count < count)
        {
            var result = await socket.ReceiveAsync(receiveBuffer, cts.Token);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                throw new WebSocketException($"closed: {(int?)socket.CloseStatus} {socket.CloseStatusDescription}");
            }

            foreach (var b in receiveBuffer.AsSpan(0, result.Count))
            {
                pending.Enqueue(b);
            }
        }

        var bytes = new byte[count];
        for (var i = 0; i < count; i++)
        {
            bytes[i] = pending.Dequeue();
        }

        return bytes;
    }

    /// <summary>Reads until the server closes the socket; returns its close code and reason.</summary>
    public async Task<(int? Status, string? Reason)> WaitForCloseAsync()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        while (true)
        {
            var result = await socket.ReceiveAsync(receiveBuffer, cts.Token);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                return ((int?)socket.CloseStatus, socket.CloseStatusDescription);
            }
        }
    }

    public void Dispose() => socket.Dispose();
}
