using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;

namespace StreamSpace.Agent.Recording;

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
        var start = new ProcessStartInfo(Encoder)
        {
            RedirectStandardInput = true,
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        foreach (var argument in (string[])["-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb0",
                     "-s", $"{decoder.Width}x{decoder.Height}", "-r", FramesPerSecond.ToString(CultureInfo.InvariantCulture), "-i", "-",
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
                        await video.WriteAsync(decoder.Frame, cancellationToken);
                    }

                    decoder.ApplyMessage(type);
                }

                for (; frames == 0 || frames * FrameMs < decoder.EndMs; frames++)
                {
                    await video.WriteAsync(decoder.Frame, cancellationToken);
                }

                await video.FlushAsync(cancellationToken);
                process.StandardInput.Close();
            }
            catch
            {
                if (!process.HasExited)
                {
                    process.Kill();
                }

                throw;
            }

            await process.WaitForExitAsync(cancellationToken);
            await discarded;
            if (process.ExitCode != 0)
            {
                throw new IOException($"ffmpeg failed (exit {process.ExitCode}): {(await errors).Trim()}");
            }
        }
    }
}
