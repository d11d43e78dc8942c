using System.Buffers.Binary;
using System.Diagnostics;
using StreamSpace.Agent.Platforms;
using StreamSpace.Agent.Tunnel;
using StreamSpace.Contracts.Tunnel;

namespace StreamSpace.Agent.Recording;

/// <summary>
/// One recording: the agent's own VNC connection to the session, signed in with the view-only password (Xvnc ignores
/// any input on it, and the recorder sends none), asking for continuous updates of the whole screen, and writing every
/// byte the server sends, as it arrives, as timestamped records of <see cref="RecordingFormat"/>. Nothing is parsed on
/// the way: one read, one write.
/// </summary>
public sealed class SessionRecorder : IAsyncDisposable
{
    private const int ReadBufferBytes = 64 * 1024;
    private const int EncodingZrle = 16;
    private const int EncodingCopyRect = 1;
    private const int EncodingRaw = 0;
    private const int EncodingDesktopSize = -223;
    private const int EncodingContinuousUpdates = -313;

    private readonly Stream server;
    private readonly FileStream file;
    private readonly Stopwatch clock;
    private readonly CancellationTokenSource stop = new();
    private long bytes;
    private long endedAtMs = -1;

    private SessionRecorder(Guid id, string sessionId, DateTimeOffset startedAt, Stream server, FileStream file, Stopwatch clock)
    {
        Id = id;
        SessionId = sessionId;
        StartedAt = startedAt;
        this.server = server;
        this.file = file;
        this.clock = clock;
        bytes = file.Length;
        Completion = Task.Run(RecordAsync);
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

            // In this order: TigerVNC honours EnableContinuousUpdates only from a client whose SetEncodings declared it.
            await server.WriteAsync(Requests(width, height), cancellationToken);
            return new SessionRecorder(id, sessionId, startedAt, server, file, clock);
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

    /// <summary>SetPixelFormat, SetEncodings, a full FramebufferUpdateRequest, then EnableContinuousUpdates for the whole screen.</summary>
    internal static byte[] Requests(int width, int height)
    {
        int[] encodings = [EncodingZrle, EncodingCopyRect, EncodingRaw, EncodingDesktopSize, EncodingContinuousUpdates];
        var message = new byte[20 + 4 + (4 * encodings.Length) + 10 + 10];
        var at = 0;
        message[at] = 0; // SetPixelFormat, 3 bytes of padding
        RecordingFormat.PixelFormat.CopyTo(message.AsSpan(at + 4));
        at += 20;
        message[at] = 2; // SetEncodings, 1 byte of padding
        BinaryPrimitives.WriteUInt16BigEndian(message.AsSpan(at + 2), (ushort)encodings.Length);
        at += 4;
        foreach (var encoding in encodings)
        {
            BinaryPrimitives.WriteInt32BigEndian(message.AsSpan(at), encoding);
            at += 4;
        }

        message[at] = 3; // FramebufferUpdateRequest, not incremental: the whole screen first
        message[at + 1] = 0;
        WriteArea(message.AsSpan(at + 2), width, height);
        at += 10;
        message[at] = 150; // EnableContinuousUpdates, on
        message[at + 1] = 1;
        WriteArea(message.AsSpan(at + 2), width, height);
        return message;
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

    /// <summary>The hot path: each read lands behind room for its record header, and header and bytes go out in one write.</summary>
    private async Task RecordAsync()
    {
        var buffer = new byte[RecordingFormat.RecordHeaderBytes + ReadBufferBytes];
        try
        {
            while (await server.ReadAsync(buffer.AsMemory(RecordingFormat.RecordHeaderBytes), stop.Token) is var read and > 0)
            {
                RecordingFormat.WriteRecordHeader(buffer, (uint)clock.ElapsedMilliseconds, read);
                await file.WriteAsync(buffer.AsMemory(0, RecordingFormat.RecordHeaderBytes + read), CancellationToken.None);
                Interlocked.Add(ref bytes, RecordingFormat.RecordHeaderBytes + read);
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
