using System.Buffers.Binary;
using System.Diagnostics;
using StreamSpace.Agent.Platforms;
using StreamSpace.Agent.Tunnel;
using StreamSpace.Contracts.Tunnel;

namespace StreamSpace.Agent.Recording;

/// <summary>
/// One recording: the agent's own VNC connection to the session, signed in with the view-only password (Xvnc ignores
/// any input on it, and the recorder sends none), asking for updates of the whole screen every <see cref="RequestInterval"/>,
/// and writing every byte the server sends, as it arrives, as timestamped records of <see cref="RecordingFormat"/>:
/// one read, one write. No pixel is decoded; <see cref="RfbMessageScanner"/> follows the message headers only, so the
/// requests cover the desktop at its current size after a viewer resized it.
/// </summary>
/// <remarks>
/// Not TigerVNC's continuous updates: Xvnc 1.12 grants them only to a client that also declares fences, and then
/// paces updates by fence round trips the client must answer, or updates stop once its congestion window is full. An
/// incremental request on a timer needs no answer: Xvnc merges requests, keeps every change until one is pending, and
/// sends changes as soon as one is, so nothing is lost and the recording keeps the server's pace up to the request rate.
/// </remarks>
public sealed class SessionRecorder : IAsyncDisposable
{
    private const int ReadBufferBytes = 64 * 1024;

    /// <summary>How often the recorder asks for the changes since the last update: at most 20 updates a second.</summary>
    public static readonly TimeSpan RequestInterval = TimeSpan.FromMilliseconds(50);

    private readonly Stream server;
    private readonly FileStream file;
    private readonly Stopwatch clock;
    private readonly CancellationTokenSource stop = new();
    private readonly RfbMessageScanner scanner;
    private long bytes;
    private long endedAtMs = -1;

    private SessionRecorder(Guid id, string sessionId, DateTimeOffset startedAt, Stream server, FileStream file, Stopwatch clock, int width, int height)
    {
        scanner = new RfbMessageScanner(width, height);
        Id = id;
        SessionId = sessionId;
        StartedAt = startedAt;
        this.server = server;
        this.file = file;
        this.clock = clock;
        bytes = file.Length;
        Completion = Task.Run(async () =>
        {
            var requests = Task.Run(RequestUpdatesAsync);
            await RecordAsync();
            await requests;
        });
    }

    public Guid Id { get; }

    public string SessionId { get; }

    public DateTimeOffset StartedAt { get; }

    /// <summary>The file's size so far.</summary>
    public long Bytes => Interlocked.Read(ref bytes);

    /// <summary>The time the recording covers: until now while it runs, until its end record once it ended.</summary>
    public long DurationMs => Interlocked.Read(ref endedAtMs) is >= 0 and var ended ? ended : clock.ElapsedMilliseconds;

    /// <summary>Ends when the recording does (stopped, or the VNC server went away); the end record is written by then.</summary>
    public Task Completion { get; }

    /// <summary>Why the recording ended on its own (the server closed or failed); null when it was stopped.</summary>
    public string? EndReason { get; private set; }

    /// <summary>
    /// Connects, signs in view-only, reads ServerInit into the file's first record, and asks for updates. Throws when
    /// the session has no view-only password (it is not recorded: the recorder must never hold the full one).
    /// </summary>
    public static async Task<SessionRecorder> StartAsync(VncEndpoint endpoint, string sessionId, Guid id, RecordingFiles files, TimeProvider time,
        CancellationToken cancellationToken)
    {
        var password = endpoint.PasswordFor(viewOnly: true);
        var server = await endpoint.OpenAsync(cancellationToken);
        FileStream? file = null;
        try
        {
            await RfbBridge.AuthenticateToServerAsync(server, password, cancellationToken);
            await server.WriteAsync(new byte[] { 1 }, cancellationToken); // ClientInit: shared, so viewers stay connected
            var serverInit = await ReadServerInitAsync(server, cancellationToken);
            var width = BinaryPrimitives.ReadUInt16BigEndian(serverInit);
            var height = BinaryPrimitives.ReadUInt16BigEndian(serverInit.AsSpan(2));

            var startedAt = time.GetUtcNow();
            var clock = Stopwatch.StartNew();
            file = files.Create(id);
            var head = new byte[RecordingFormat.Magic.Length + RecordingFormat.RecordHeaderBytes + serverInit.Length];
            RecordingFormat.Magic.CopyTo(head);
            RecordingFormat.WriteRecordHeader(head.AsSpan(RecordingFormat.Magic.Length), 0, serverInit.Length);
            serverInit.CopyTo(head.AsSpan(RecordingFormat.Magic.Length + RecordingFormat.RecordHeaderBytes));
            await file.WriteAsync(head, cancellationToken);

            await server.WriteAsync(Requests(width, height), cancellationToken);
            return new SessionRecorder(id, sessionId, startedAt, server, file, clock, width, height);
        }
        catch
        {
            await server.DisposeAsync();
            if (file is not null)
            {
                await file.DisposeAsync();
                files.Delete(id);
            }

            throw;
        }
    }

    /// <summary>SetPixelFormat, SetEncodings, then a FramebufferUpdateRequest for the whole screen, not incremental.</summary>
    internal static byte[] Requests(int width, int height)
    {
        int[] encodings = [RfbEncodings.Zrle, RfbEncodings.CopyRect, RfbEncodings.Raw, RfbEncodings.DesktopSize];
        var message = new byte[20 + 4 + (4 * encodings.Length)];
        message[0] = 0; // SetPixelFormat, 3 bytes of padding
        RecordingFormat.PixelFormat.CopyTo(message.AsSpan(4));
        message[20] = 2; // SetEncodings, 1 byte of padding
        BinaryPrimitives.WriteUInt16BigEndian(message.AsSpan(22), (ushort)encodings.Length);
        for (var i = 0; i < encodings.Length; i++)
        {
            BinaryPrimitives.WriteInt32BigEndian(message.AsSpan(24 + (4 * i)), encodings[i]);
        }

        return [.. message, .. UpdateRequest(incremental: false, width, height)];
    }

    private static byte[] UpdateRequest(bool incremental, int width, int height)
    {
        var request = new byte[10];
        request[0] = 3; // FramebufferUpdateRequest
        request[1] = incremental ? (byte)1 : (byte)0;
        WriteArea(request.AsSpan(2), width, height);
        return request;
    }

    private static void WriteArea(Span<byte> area, int width, int height)
    {
        BinaryPrimitives.WriteUInt16BigEndian(area, 0);
        BinaryPrimitives.WriteUInt16BigEndian(area[2..], 0);
        BinaryPrimitives.WriteUInt16BigEndian(area[4..], (ushort)width);
        BinaryPrimitives.WriteUInt16BigEndian(area[6..], (ushort)height);
    }

    /// <summary>ServerInit as the server sent it: size, pixel format, and the desktop's name.</summary>
    private static async Task<byte[]> ReadServerInitAsync(Stream server, CancellationToken cancellationToken)
    {
        var fixedPart = new byte[24];
        await server.ReadExactlyAsync(fixedPart, cancellationToken);
        var nameLength = BinaryPrimitives.ReadUInt32BigEndian(fixedPart.AsSpan(20));
        if (nameLength > 4096)
        {
            throw new InvalidDataException("the VNC server's ServerInit names a desktop longer than 4096 bytes");
        }

        var serverInit = new byte[24 + nameLength];
        fixedPart.CopyTo(serverInit, 0);
        await server.ReadExactlyAsync(serverInit.AsMemory(24), cancellationToken);
        return serverInit;
    }

    /// <summary>Asks for the changes since the last update, at the request interval, until the recording ends.</summary>
    private async Task RequestUpdatesAsync()
    {
        using var timer = new PeriodicTimer(RequestInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(stop.Token))
            {
                var (width, height) = scanner.Size;
                await server.WriteAsync(UpdateRequest(incremental: true, width, height), stop.Token);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or System.Net.Sockets.SocketException or ObjectDisposedException)
        {
            // The recording ended: stopped, or the server went away (the read loop says which).
        }
    }

    /// <summary>The hot path: each read lands behind room for its record header, and header and bytes go out in one write.</summary>
    private async Task RecordAsync()
    {
        var buffer = new byte[RecordingFormat.RecordHeaderBytes + ReadBufferBytes];
        try
        {
            while (await server.ReadAsync(buffer.AsMemory(RecordingFormat.RecordHeaderBytes), stop.Token) is var read and > 0)
            {
                RecordingFormat.WriteRecordHeader(buffer, (uint)clock.ElapsedMilliseconds, read);
                try
                {
                    await file.WriteAsync(buffer.AsMemory(0, RecordingFormat.RecordHeaderBytes + read), CancellationToken.None);
                }
                catch (IOException e)
                {
                    EndReason = "the recording could not be written: " + e.Message;
                    return;
                }

                Interlocked.Add(ref bytes, RecordingFormat.RecordHeaderBytes + read);
                scanner.Feed(buffer.AsSpan(RecordingFormat.RecordHeaderBytes, read));
            }

            EndReason = "the VNC server closed the connection";
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            // Stopped: the end record follows.
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or ObjectDisposedException)
        {
            EndReason = "the VNC connection failed: " + e.Message;
        }
        finally
        {
            await stop.CancelAsync(); // ends the requests too
            var ended = clock.ElapsedMilliseconds;
            var end = new byte[RecordingFormat.RecordHeaderBytes];
            RecordingFormat.WriteRecordHeader(end, (uint)ended, 0);
            try
            {
                await file.WriteAsync(end, CancellationToken.None);
                Interlocked.Add(ref bytes, end.Length);
            }
            catch (IOException)
            {
                // A full disk: the recording ends at its last record, as one cut short does.
            }

            Interlocked.Exchange(ref endedAtMs, ended);
            await file.DisposeAsync();
            await server.DisposeAsync();
        }
    }

    /// <summary>Stops recording and waits for the end record.</summary>
    public async Task StopAsync()
    {
        await stop.CancelAsync();
        await Completion;
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        stop.Dispose();
    }
}
