using System.Buffers.Binary;
using System.Collections.Concurrent;

namespace StreamSpace.Contracts.Tunnel;

/// <summary>The streams of one agent socket, and the dispatch of its binary frames to them.</summary>
public sealed class TunnelMux(SendFrame sendFrame)
{
    private readonly ConcurrentDictionary<int, TunnelStream> streams = new();
    private int lastId;

    public int Count => streams.Count;

    public TunnelStream Open() => Add(Interlocked.Increment(ref lastId));

    /// <summary>Adopts a stream the peer opened.</summary>
    public TunnelStream Add(int id)
    {
        var stream = new TunnelStream(id, sendFrame);
        if (!streams.TryAdd(id, stream))
        {
            throw new InvalidOperationException($"stream {id} is already open");
        }

        return stream;
    }

    public bool TryGet(int id, out TunnelStream stream) => streams.TryGetValue(id, out stream!);

    public void Remove(int id, string reason)
    {
        if (streams.TryRemove(id, out var stream))
        {
            stream.Close(reason);
        }
    }

    /// <summary>Routes a binary frame; returns false when the frame is malformed. Frames for closed streams are dropped.</summary>
    public bool Dispatch(ReadOnlySpan<byte> frame)
    {
        if (!TunnelFrame.TryParse(frame, out var kind, out var id, out var payload))
        {
            return false;
        }

        if (!streams.TryGetValue(id, out var stream))
        {
            return true;
        }

        if (kind == TunnelFrame.Data)
        {
            stream.OnData(payload);
        }
        else if (payload.Length == 4)
        {
            stream.OnCredit(BinaryPrimitives.ReadInt32BigEndian(payload));
        }
        else
        {
            return false;
        }

        return true;
    }

    public void CloseAll(string reason)
    {
        foreach (var id in streams.Keys)
        {
            Remove(id, reason);
        }
    }
}
