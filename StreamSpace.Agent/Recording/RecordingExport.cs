using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;

namespace StreamSpace.Agent.Recording;

/// <summary>The decoder's screen at the recording's first size: a video keeps one size, so a later desktop is cropped or padded with black.</summary>
internal sealed class FirstSize(RfbDecoder decoder)
{
    private const int BytesPerPixel = 4;
    private readonly int width = decoder.Width;
    private readonly int height = decoder.Height;
    private byte[]? fitted;

    public int Width => width;

    public int Height => height;

    public byte[] Frame()
    {
        if (decoder.Width == width && decoder.Height == height)
        {
            return decoder.Frame;
        }

        fitted ??= new byte[width * height * BytesPerPixel];
        Array.Clear(fitted);
        var rowBytes = Math.Min(width, decoder.Width) * BytesPerPixel;
        for (var y = 0; y < Math.Min(height, decoder.Height); y++)
        {
            decoder.Frame.AsSpan(y * decoder.Width * BytesPerPixel, rowBytes).CopyTo(fitted.AsSpan(y * width * BytesPerPixel));
        }

        return fitted;
    }
}

/// <summary>ffmpeg is not installed on the agent's machine.</summary>
public sealed class EncoderMissingException(string message) : Exception(message);

/// <summary>
/// Renders a recording to an MP4 (H.264): the decoder's framebuffer sampled at <see cref="FramesPerSecond"/>, the last
/// frame repeated through idle time up to the recording's end, piped as raw frames into Debian's ffmpeg.
/// </summary>
public static class RecordingExport
{
    public const int FramesPerSecond = 10;
    private const int FrameMs = 1000 / FramesPerSecond;

    public const string Encoder = "ffmpeg";

    /// <summary>Writes <paramref name="output"/> from the recording at <paramref name="recording"/>; throws <see cref="EncoderMissingException"/> without ffmpeg.</summary>
    public static async Task RenderAsync(string recording, string output, CancellationToken cancellationToken)
    {
        using var decoder = RfbDecoder.Open(recording);
        var sized = new FirstSize(decoder);
        var start = new ProcessStartInfo(Encoder)
        {
            RedirectStandardInput = true,
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        foreach (var argument in (string[])["-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb0",
                     "-s", $"{sized.Width}x{sized.Height}", "-r", FramesPerSecond.ToString(CultureInfo.InvariantCulture), "-i", "-",
                     "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-movflags", "+faststart", "-f", "mp4", output])
        {
            start.ArgumentList.Add(argument);
        }

        Process process;
        try
        {
            process = Process.Start(start) ?? throw new EncoderMissingException("ffmpeg could not be started");
        }
        catch (Win32Exception)
        {
            throw new EncoderMissingException("Exporting needs ffmpeg on the agent's machine: apt-get install ffmpeg.");
        }

        using (process)
        {
            var errors = process.StandardError.ReadToEndAsync(cancellationToken);
            var discarded = process.StandardOutput.ReadToEndAsync(cancellationToken);
            try
            {
                var video = process.StandardInput.BaseStream;
                var frames = 0L;
                while (decoder.TryBeginMessage(out var type, out var timeMs))
                {
                    // Frames due before this message arrived show the screen as it was.
                    for (; frames * FrameMs < timeMs; frames++)
                    {
                        await video.WriteAsync(sized.Frame(), cancellationToken);
                    }

                    decoder.ApplyMessage(type);
                }

                for (; frames == 0 || frames * FrameMs < decoder.EndMs; frames++)
                {
                    await video.WriteAsync(sized.Frame(), cancellationToken);
                }

                await video.FlushAsync(cancellationToken);
                process.StandardInput.Close();
                await process.WaitForExitAsync(cancellationToken);
            }
            finally
            {
                // Whatever ended the render (a corrupt file, the agent stopping, a cancelled wait): no ffmpeg outlives it.
                if (!process.HasExited)
                {
                    process.Kill(entireProcessTree: true);
                    await process.WaitForExitAsync(CancellationToken.None);
                }
            }

            await discarded;
            if (process.ExitCode != 0)
            {
                throw new IOException($"ffmpeg failed (exit {process.ExitCode}): {(await errors).Trim()}");
            }
        }
    }
}
