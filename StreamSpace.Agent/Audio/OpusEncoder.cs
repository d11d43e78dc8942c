using System.Runtime.InteropServices;
using StreamSpace.Contracts.Tunnel;

namespace StreamSpace.Agent.Audio;

/// <summary>
/// Debian's libopus (libopus0) through P/Invoke: one encoder of interleaved 16-bit PCM at the stream's rate and channels
/// into Opus packets of <see cref="AudioStreams.FrameMilliseconds"/> ms at <see cref="AudioStreams.Bitrate"/>. The
/// browser's WebCodecs AudioDecoder takes each packet as it is. Not thread-safe: one per stream.
/// </summary>
public sealed class OpusEncoder : IDisposable
{
    private const string Library = "libopus.so.0";
    private const int ApplicationAudio = 2049;
    private const int SetBitrateRequest = 4002;
    private const int Ok = 0;

    /// <summary>Samples per channel in one frame: 960 at 48 kHz and 20 ms.</summary>
    public const int FrameSamples = AudioStreams.SampleRate / 1000 * AudioStreams.FrameMilliseconds;

    /// <summary>The PCM bytes of one frame: samples × channels × 2 bytes (s16le).</summary>
    public const int FrameBytes = FrameSamples * AudioStreams.Channels * sizeof(short);

    /// <summary>Opus's own recommended ceiling for one packet.</summary>
    public const int MaxPacketBytes = 4000;

    [DllImport(Library)]
    private static extern IntPtr opus_encoder_create(int sampleRate, int channels, int application, out int error);

    // opus_encoder_ctl is variadic; on x86-64 and arm64 Linux one int after the request is passed as a fixed argument would be.
    [DllImport(Library)]
    private static extern int opus_encoder_ctl(IntPtr encoder, int request, int value);

    [DllImport(Library)]
    private static extern int opus_encode(IntPtr encoder, short[] pcm, int frameSize, byte[] packet, int maxPacketBytes);

    [DllImport(Library)]
    private static extern void opus_encoder_destroy(IntPtr encoder);

    private readonly short[] pcm = new short[FrameSamples * AudioStreams.Channels];
    private readonly byte[] packet = new byte[MaxPacketBytes];
    private IntPtr encoder;

    public OpusEncoder(int bitrate = AudioStreams.Bitrate)
    {
        encoder = opus_encoder_create(AudioStreams.SampleRate, AudioStreams.Channels, ApplicationAudio, out var error);
        if (error != Ok || encoder == IntPtr.Zero)
        {
            throw new InvalidOperationException($"libopus could not create an encoder (error {error})");
        }

        if (opus_encoder_ctl(encoder, SetBitrateRequest, bitrate) != Ok)
        {
            Dispose();
            throw new InvalidOperationException($"libopus refused the bitrate {bitrate}");
        }
    }

    /// <summary>Encodes one frame of <see cref="FrameBytes"/> bytes of s16le PCM; the packet is valid until the next call.</summary>
    public ReadOnlyMemory<byte> Encode(ReadOnlySpan<byte> frame)
    {
        ObjectDisposedException.ThrowIf(encoder == IntPtr.Zero, this);
        if (frame.Length != FrameBytes)
        {
            throw new ArgumentException($"a frame is {FrameBytes} bytes, not {frame.Length}", nameof(frame));
        }

        MemoryMarshal.Cast<byte, short>(frame).CopyTo(pcm);
        var length = opus_encode(encoder, pcm, FrameSamples, packet, packet.Length);
        return length < 0
            ? throw new InvalidOperationException($"libopus could not encode a frame (error {length})")
            : packet.AsMemory(0, length);
    }

    public void Dispose()
    {
        if (encoder != IntPtr.Zero)
        {
            opus_encoder_destroy(encoder);
            encoder = IntPtr.Zero;
        }
    }
}
