using System.Runtime.InteropServices;
using StreamSpace.Agent.Audio;
using StreamSpace.Contracts.Tunnel;

namespace StreamSpace.Tests.Agent.Audio;

/// <summary>The agent's Opus encoder (Debian's libopus) against libopus's own decoder: a tone goes in, the same tone comes out.</summary>
public sealed class OpusEncoderTests
{
    [Fact]
    public void A_440_Hz_tone_encodes_to_packets_of_the_bitrate_that_decode_to_a_440_Hz_tone()
    {
        const int seconds = 2;
        var frames = seconds * 1000 / AudioStreams.FrameMilliseconds;
        using var encoder = new OpusEncoder();
        var packets = Enumerable.Range(0, frames).Select(frame => encoder.Encode(Tone.Frame(440, frame)).ToArray()).ToList();
        var packetBytes = packets.Sum(p => (long)p.Length);

        // The last second: past the codec's start-up.
        var left = Tone.DecodeLeft(packets.Skip(frames / 2));
        var (peak, power) = Tone.Peak(left, AudioStreams.SampleRate);
        Assert.InRange(peak, 430, 450);
        Assert.True(power > 0.03, $"the tone's power is {power}");
        // About the bitrate asked for (64 kbit/s), give or take Opus's own variation.
        var bitrate = packetBytes * 8 / seconds;
        Assert.InRange(bitrate, AudioStreams.Bitrate * 0.7, AudioStreams.Bitrate * 1.3);
    }

    [Fact]
    public void A_frame_of_the_wrong_size_is_refused()
    {
        using var encoder = new OpusEncoder();
        Assert.Throws<ArgumentException>(() => encoder.Encode(new byte[OpusEncoder.FrameBytes - 4]));
    }
}

/// <summary>A sine tone as the session would play it, Opus packets decoded by libopus, and where a signal's energy peaks.</summary>
public static class Tone
{
    [DllImport("libopus.so.0")]
    private static extern IntPtr opus_decoder_create(int sampleRate, int channels, out int error);

    [DllImport("libopus.so.0")]
    private static extern int opus_decode(IntPtr decoder, byte[] packet, int length, short[] pcm, int frameSize, int decodeFec);

    [DllImport("libopus.so.0")]
    private static extern void opus_decoder_destroy(IntPtr decoder);

    /// <summary>The left channel of the packets, decoded in order by one decoder, as samples from -1 to 1.</summary>
    public static double[] DecodeLeft(IEnumerable<byte[]> packets)
    {
        var decoder = opus_decoder_create(AudioStreams.SampleRate, AudioStreams.Channels, out var error);
        Assert.Equal(0, error);
        var left = new List<double>();
        try
        {
            var pcm = new short[OpusEncoder.FrameSamples * AudioStreams.Channels];
            foreach (var packet in packets)
            {
                var samples = opus_decode(decoder, packet, packet.Length, pcm, OpusEncoder.FrameSamples, 0);
                Assert.Equal(OpusEncoder.FrameSamples, samples);
                for (var i = 0; i < samples; i++)
                {
                    left.Add(pcm[2 * i] / 32768.0);
                }
            }
        }
        finally
        {
            opus_decoder_destroy(decoder);
        }

        return [.. left];
    }

    /// <summary>Frame <paramref name="index"/> of a stereo s16le tone at half scale.</summary>
    public static byte[] Frame(double frequency, int index)
    {
        var bytes = new byte[OpusEncoder.FrameBytes];
        var samples = MemoryMarshal.Cast<byte, short>(bytes.AsSpan());
        for (var i = 0; i < OpusEncoder.FrameSamples; i++)
        {
            var t = (double)(index * OpusEncoder.FrameSamples + i) / AudioStreams.SampleRate;
            var value = (short)(Math.Sin(2 * Math.PI * frequency * t) * 16384);
            samples[2 * i] = value;
            samples[2 * i + 1] = value;
        }

        return bytes;
    }

    /// <summary>A 16-bit stereo WAV of <paramref name="seconds"/> of the tone, for paplay.</summary>
    public static byte[] Wav(double frequency, int seconds)
    {
        var frames = seconds * 1000 / AudioStreams.FrameMilliseconds;
        var data = Enumerable.Range(0, frames).SelectMany(i => Frame(frequency, i)).ToArray();
        using var wav = new MemoryStream();
        using var writer = new BinaryWriter(wav);
        writer.Write("RIFF"u8);
        writer.Write(36 + data.Length);
        writer.Write("WAVEfmt "u8);
        writer.Write(16);
        writer.Write((short)1);
        writer.Write((short)AudioStreams.Channels);
        writer.Write(AudioStreams.SampleRate);
        writer.Write(AudioStreams.SampleRate * AudioStreams.Channels * 2);
        writer.Write((short)(AudioStreams.Channels * 2));
        writer.Write((short)16);
        writer.Write("data"u8);
        writer.Write(data.Length);
        writer.Write(data);
        writer.Flush();
        return wav.ToArray();
    }

    /// <summary>The frequency (every 5 Hz from 100 to 4000) where the signal's power is greatest, and that power (Goertzel).</summary>
    public static (double Frequency, double Power) Peak(double[] signal, int sampleRate)
    {
        var best = (Frequency: 0.0, Power: 0.0);
        for (var frequency = 100.0; frequency <= 4000; frequency += 5)
        {
            var coefficient = 2 * Math.Cos(2 * Math.PI * frequency / sampleRate);
            double previous = 0, beforePrevious = 0;
            foreach (var sample in signal)
            {
                var current = sample + coefficient * previous - beforePrevious;
                beforePrevious = previous;
                previous = current;
            }

            var power = (previous * previous + beforePrevious * beforePrevious - coefficient * previous * beforePrevious) / signal.Length / signal.Length;
            if (power > best.Power)
            {
                best = (frequency, power);
            }
        }

        return best;
    }
}
