using System.Buffers.Binary;

namespace StreamSpace.Contracts.Tunnel;

/// <summary>
/// Binary frames on the agent socket: [kind:1][stream id:4, big-endian][payload]. Data carries VNC bytes
/// as they are (no base64); Credit grants the peer the right to send that many more bytes on the stream.
/// </summary>
public static class TunnelFrame
{
    public const byte Data = 1;
    public const byte Credit = 2;
    public const int HeaderLength = 5;

    /// <summary>
    /// Bytes a side may have in flight per stream before it waits for credit; bounds memory per viewer. It must cover
    /// the bytes sent while credit travels back: 1 MiB is only about 6 ms at 160 MB/s, so a few milliseconds of
    /// scheduling delay on a busy two-core box would leave the sender waiting.
    /// </summary>
    public const int Window = 2 * 1024 * 1024;

    /// <summary>Credit goes back in steps this large: small next to the window, so the sender never runs dry waiting.</summary>
    public const int CreditStep = Window / 16;

    /// <summary>The largest data payload in one frame.</summary>
    public const int MaxPayload = 64 * 1024;

    public static void WriteHeader(Span<byte> destination, byte kind, int streamId)
    {
        destination[0] = kind;
        BinaryPrimitives.WriteInt32BigEndian(destination[1..], streamId);
    }

    public static bool TryParse(ReadOnlySpan<byte> frame, out byte kind, out int streamId, out ReadOnlySpan<byte> payload)
    {
        if (frame.Length < HeaderLength || frame[0] is not (Data or Credit))
        {
            kind = 0;
            streamId = 0;
            payload = default;
            return false;
        }

        kind = frame[0];
        streamId = BinaryPrimitives.ReadInt32BigEndian(frame[1..]);
        payload = frame[HeaderLength..];
        return true;
    }
}
