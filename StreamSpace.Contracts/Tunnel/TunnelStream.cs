using System.Buffers;
using System.Buffers.Binary;
using System.Threading.Channels;

namespace StreamSpace.Contracts.Tunnel;

/// <summary>Sends one binary frame on the shared agent socket; the owner serialises sends.</summary>
public delegate ValueTask SendFrame(ReadOnlyMemory<byte> frame, CancellationToken cancellationToken);

/// <summary>
/// One VNC stream multiplexed over the agent socket, as a <see cref="Stream"/>. Credit-based flow control makes
/// it fair: a side never sends more than the peer's remaining window, so the socket's reader can always hand
/// data to a stream without waiting, and a stalled viewer stalls only its own stream, with bounded memory.
/// </summary>
public sealed class TunnelStream : DuplexStream
{
    private readonly SendFrame sendFrame;
    private readonly Channel<byte[]> incoming = Channel.CreateUnbounded<byte[]>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
    private readonly SemaphoreSlim creditSignal = new(0);
    private readonly SemaphoreSlim writeLock = new(1, 1);
    private byte[]? current;
    private int currentOffset;
    private int currentLength;
    private long sendCredit = TunnelFrame.Window;
    private long receivedUnacknowledged;
    private long buffered;
    private int closed;

    public TunnelStream(int id, SendFrame sendFrame)
    {
        Id = id;
        this.sendFrame = sendFrame;
    }

    public int Id { get; }

    /// <summary>Why the stream closed, once it has.</summary>
    public string? CloseReason { get; private set; }

    /// <summary>Called by the socket's reader for each data frame; never blocks.</summary>
    public void OnData(ReadOnlySpan<byte> payload)
    {
        if (Interlocked.Add(ref buffered, payload.Length) > TunnelFrame.Window)
        {
            throw new InvalidOperationException($"stream {Id} received more than its window");
        }

        var copy = ArrayPool<byte>.Shared.Rent(payload.Length + 4);
        BinaryPrimitives.WriteInt32LittleEndian(copy, payload.Length);
        payload.CopyTo(copy.AsSpan(4));
        if (!incoming.Writer.TryWrite(copy))
        {
            ArrayPool<byte>.Shared.Return(copy);
        }
    }

    /// <summary>Called by the socket's reader for each credit frame.</summary>
    public void OnCredit(int bytes)
    {
        Interlocked.Add(ref sendCredit, bytes);
        creditSignal.Release();
    }

    /// <summary>Ends the stream: readers see end-of-stream and writers fail.</summary>
    public void Close(string reason)
    {
        if (Interlocked.Exchange(ref closed, 1) == 0)
        {
            CloseReason = reason;
            incoming.Writer.TryComplete();
            creditSignal.Release();
        }
    }

    public bool IsClosed => Volatile.Read(ref closed) == 1;

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (current is null)
        {
            if (!await incoming.Reader.WaitToReadAsync(cancellationToken) || !incoming.Reader.TryRead(out current))
            {
                return 0;
            }

            currentLength = BinaryPrimitives.ReadInt32LittleEndian(current);
            currentOffset = 0;
        }

        var count = Math.Min(buffer.Length, currentLength - currentOffset);
        current.AsMemory(4 + currentOffset, count).CopyTo(buffer);
        currentOffset += count;
        if (currentOffset == currentLength)
        {
            ArrayPool<byte>.Shared.Return(current);
            current = null;
        }

        await ConsumedAsync(count, cancellationToken);
        return count;
    }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        await writeLock.WaitAsync(cancellationToken);
        var frame = ArrayPool<byte>.Shared.Rent(TunnelFrame.HeaderLength + TunnelFrame.MaxPayload);
        try
        {
            TunnelFrame.WriteHeader(frame, TunnelFrame.Data, Id);
            while (!buffer.IsEmpty)
            {
                var count = (int)Math.Min(Math.Min(buffer.Length, TunnelFrame.MaxPayload), await WaitForCreditAsync(cancellationToken));
                buffer.Span[..count].CopyTo(frame.AsSpan(TunnelFrame.HeaderLength));
                await SendDataAsync(frame, count, cancellationToken);
                buffer = buffer[count..];
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(frame);
            writeLock.Release();
        }
    }

    /// <summary>
    /// Sends everything <paramref name="read"/> yields until it returns 0, reading straight into the frame that goes
    /// on the agent socket: one buffer for the whole stream and no copy between the source and the frame. Never reads
    /// more than the peer's remaining credit, so a stalled reader on the far side stops the source being read.
    /// </summary>
    public async Task CopyFromAsync(Func<Memory<byte>, CancellationToken, ValueTask<int>> read, CancellationToken cancellationToken)
    {
        await writeLock.WaitAsync(cancellationToken);
        var frame = ArrayPool<byte>.Shared.Rent(TunnelFrame.HeaderLength + TunnelFrame.MaxPayload);
        try
        {
            TunnelFrame.WriteHeader(frame, TunnelFrame.Data, Id);
            while (true)
            {
                var credit = await WaitForCreditAsync(cancellationToken);
                var count = await read(frame.AsMemory(TunnelFrame.HeaderLength, (int)Math.Min(TunnelFrame.MaxPayload, credit)), cancellationToken);
                if (count == 0)
                {
                    return;
                }

                await SendDataAsync(frame, count, cancellationToken);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(frame);
            writeLock.Release();
        }
    }

    /// <summary>
    /// Hands each received chunk to <paramref name="write"/> as it arrived, without copying it out first, until the
    /// stream ends. Credit goes back to the peer only once <paramref name="write"/> has taken the bytes, so a slow
    /// destination holds the peer back instead of letting bytes pile up here.
    /// </summary>
    public async Task CopyToAsync(Func<ReadOnlyMemory<byte>, CancellationToken, ValueTask> write, CancellationToken cancellationToken)
    {
        if (current is not null)
        {
            // Left over from a ReadAsync (e.g. the end of the RFB handshake).
            var rest = currentLength - currentOffset;
            await write(current.AsMemory(4 + currentOffset, rest), cancellationToken);
            ArrayPool<byte>.Shared.Return(current);
            current = null;
            await ConsumedAsync(rest, cancellationToken);
        }

        while (await incoming.Reader.WaitToReadAsync(cancellationToken))
        {
            while (incoming.Reader.TryRead(out var chunk))
            {
                var length = BinaryPrimitives.ReadInt32LittleEndian(chunk);
                try
                {
                    await write(chunk.AsMemory(4, length), cancellationToken);
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(chunk);
                }

                await ConsumedAsync(length, cancellationToken);
            }
        }
    }

    public override Task CopyToAsync(Stream destination, int bufferSize, CancellationToken cancellationToken) =>
        CopyToAsync((chunk, token) => destination.WriteAsync(chunk, token), cancellationToken);

    /// <summary>The peer's remaining credit, once there is some; throws once the stream closed.</summary>
    private async ValueTask<long> WaitForCreditAsync(CancellationToken cancellationToken)
    {
        long credit;
        while ((credit = Interlocked.Read(ref sendCredit)) <= 0)
        {
            ObjectDisposedException.ThrowIf(IsClosed, this);
            await creditSignal.WaitAsync(cancellationToken);
        }

        ObjectDisposedException.ThrowIf(IsClosed, this);
        return credit;
    }

    /// <summary>Sends frame[..header + count] as one data frame; the caller holds the write lock and had the credit.</summary>
    private ValueTask SendDataAsync(byte[] frame, int count, CancellationToken cancellationToken)
    {
        Interlocked.Add(ref sendCredit, -count);
        return sendFrame(frame.AsMemory(0, TunnelFrame.HeaderLength + count), cancellationToken);
    }

    private ValueTask ConsumedAsync(int count, CancellationToken cancellationToken)
    {
        Interlocked.Add(ref buffered, -count);
        return AcknowledgeAsync(count, cancellationToken);
    }

    /// <summary>Grants the peer credit for what was read, in batches so small reads do not each cost a frame.</summary>
    private async ValueTask AcknowledgeAsync(int count, CancellationToken cancellationToken)
    {
        var pending = Interlocked.Add(ref receivedUnacknowledged, count);
        if (pending < TunnelFrame.CreditStep || IsClosed)
        {
            return;
        }

        Interlocked.Add(ref receivedUnacknowledged, -pending);
        var frame = new byte[TunnelFrame.HeaderLength + 4];
        TunnelFrame.WriteHeader(frame, TunnelFrame.Credit, Id);
        BinaryPrimitives.WriteInt32BigEndian(frame.AsSpan(TunnelFrame.HeaderLength), (int)pending);
        try
        {
            await sendFrame(frame, cancellationToken);
        }
        catch (Exception e) when (e is ObjectDisposedException or InvalidOperationException or System.Net.WebSockets.WebSocketException)
        {
            Close("the agent connection closed");
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            Close("disposed");
            while (incoming.Reader.TryRead(out var left))
            {
                ArrayPool<byte>.Shared.Return(left);
            }
        }

        base.Dispose(disposing);
    }
}
