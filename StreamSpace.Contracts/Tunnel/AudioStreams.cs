namespace StreamSpace.Contracts.Tunnel;

/// <summary>
/// A session's sound on a data connection opened with the purpose <see cref="Purpose"/> (agent protocol 4). Framed as a
/// file stream (<see cref="FileStreams"/>: a 4-byte big-endian length and that many bytes): the agent first sends a
/// <see cref="FileStreamReply"/> (200 once capture has started; 403 when the session's template has audio off; 409
/// when the session is not running here), then one frame per Opus packet of <see cref="FrameMilliseconds"/> ms at
/// <see cref="SampleRate"/> Hz, <see cref="Channels"/> channels, until either side closes. The API sends each packet to
/// the viewer as one binary WebSocket message. Capture runs only while a stream is open, so a session no one listens to
/// costs nothing but its idle sound server.
/// </summary>
public static class AudioStreams
{
    public const string Purpose = "audio";

    public const int SampleRate = 48_000;
    public const int Channels = 2;
    public const int FrameMilliseconds = 20;

    /// <summary>The Opus encoder's target bitrate, bits per second: plenty for speech and music in a desktop.</summary>
    public const int Bitrate = 64_000;

    /// <summary>The browser's path to a session's audio WebSocket (with <c>?ticket=</c>), beside <c>/vnc/{id}</c>.</summary>
    public static string PathFor(string sessionId) => $"/audio/{sessionId}";
}
