using System.Buffers.Binary;

namespace StreamSpace.Contracts.Tunnel;

/// <summary>
/// Reading a recording off its agent: a data connection opened with the purpose <see cref="Download"/> or
/// <see cref="Export"/> and the recording's id (its "D" form) as the file name. Framed as a file download
/// (<see cref="FileStreams"/>): a <see cref="FileStreamReply"/> with the size, then that many raw bytes. A download is the
/// recording file itself (<see cref="RecordingFormat"/>); an export is an MP4 (H.264) the agent renders with ffmpeg.
/// </summary>
public static class RecordingStreams
{
    public const string Download = "recording_download";
    public const string Export = "recording_export";

    public static readonly IReadOnlySet<string> Purposes = new HashSet<string> { Download, Export };
}

/// <summary>
/// A recording file: <see cref="Magic"/>, then records of a 4-byte big-endian time (milliseconds since the recording
/// began), a 4-byte big-endian length and that many bytes the VNC server sent, in order. The first record holds the
/// ServerInit message as the server sent it (the agent's own connection had already authenticated). Every later byte
/// is the server's stream after the agent asked for <see cref="PixelFormat"/> (noVNC's own format, so noVNC can replay
/// the stream as it is), the encodings ZRLE, CopyRect and Raw with the DesktopSize pseudo-encoding, and a full update
/// followed by an incremental request every 50 ms (not continuous updates: Xvnc grants those only with fences, which
/// need answers): framebuffer updates, bells and clipboard text (a reader skips EndOfContinuousUpdates, type 150,
/// should a server send one). A record of length 0 marks the end, at the time the recording stopped; a recording cut
/// short (the agent died) has none, and ends at its last record.
/// </summary>
public static class RecordingFormat
{
    public static ReadOnlySpan<byte> Magic => "SSRFB001"u8;

    public const int RecordHeaderBytes = 8;

    /// <summary>
    /// The RFB pixel format every update uses: 32 bits per pixel, depth 24, little-endian, true colour, each channel
    /// 0–255, red at shift 0, green 8, blue 16 (bytes R, G, B, unused in memory: ffmpeg's <c>rgb0</c>).
    /// </summary>
    public static ReadOnlySpan<byte> PixelFormat => [32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 0, 8, 16, 0, 0, 0];

    public static void WriteRecordHeader(Span<byte> header, uint milliseconds, int length)
    {
        BinaryPrimitives.WriteUInt32BigEndian(header, milliseconds);
        BinaryPrimitives.WriteInt32BigEndian(header[4..], length);
    }
}
