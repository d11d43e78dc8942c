using System.Diagnostics;
using StreamSpace.Agent.Platforms;
using StreamSpace.Agent.Platforms.Local;
using StreamSpace.Contracts.Tunnel;

namespace StreamSpace.Agent.Audio;

/// <summary>
/// Captures a session's null sink's monitor with parec (raw s16le, 48 kHz, stereo), run as the session's account as
/// its own programs are, encodes each 20 ms with Opus and sends one frame per packet after the reply. Capture runs only
/// while the stream is open: when the other side closes it (the viewer left) parec is killed, so a session nobody
/// listens to costs only its idle sound server. Used by the agent (local sessions) and by a pod's file service.
/// </summary>
public sealed class SoundCapture(ILogger logger, string captureProgram = SoundCapture.CaptureProgram)
{
    /// <summary>PulseAudio's recorder (Debian's pulseaudio-utils).</summary>
    public const string CaptureProgram = "parec";

    /// <summary>Where the capture's programs are looked for: its environment's PATH, nothing of the agent's.</summary>
    private const string CapturePath = "/usr/local/bin:/usr/bin:/bin";

    /// <summary>A session that has just started may not have its sound server listening yet: parec is tried again this often.</summary>
    private static readonly TimeSpan RetryAfter = TimeSpan.FromMilliseconds(250);
    private const int Attempts = 20;

    /// <summary>
    /// Answers 409 for a session not running here (null), 403 for one without sound, 503 on a machine without the capture
    /// program, else 200 and the packets until either side closes.
    /// </summary>
    public async Task ServeAsync(SessionSound? sound, Stream data, CancellationToken cancellationToken)
    {
        if (sound is null)
        {
            await FileStreams.WriteReplyAsync(data, new FileStreamReply(409, "The session is not running on its agent."), cancellationToken);
            return;
        }

        if (sound.Socket is null)
        {
            await FileStreams.WriteReplyAsync(data, new FileStreamReply(403, "Sound is turned off for the session's template."), cancellationToken);
            return;
        }

        if (!IsInstalled(captureProgram))
        {
            // Said before the 200: a stream that opened and then cut off reads as a network fault, not a missing program.
            await FileStreams.WriteReplyAsync(data, new FileStreamReply(503,
                $"Sound needs {captureProgram} on the session's machine, which is not installed: apt-get install pulseaudio-utils."), cancellationToken);
            return;
        }

        await FileStreams.WriteReplyAsync(data, new FileStreamReply(200), cancellationToken);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        // The other side never sends on an audio stream: a read that ends means it closed the connection.
        var closed = WaitForCloseAsync(data, stop);
        try
        {
            await CaptureAsync(sound, data, stop.Token);
        }
        finally
        {
            await stop.CancelAsync();
            await closed;
        }
    }

    private static async Task WaitForCloseAsync(Stream data, CancellationTokenSource stop)
    {
        try
        {
            var buffer = new byte[1];
            while (await data.ReadAsync(buffer, stop.Token) > 0)
            {
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or ObjectDisposedException)
        {
            // Ended either way.
        }

        await stop.CancelAsync();
    }

    /// <summary>Runs parec until the stream closes, starting it again while the session's sound server is not up yet.</summary>
    private async Task CaptureAsync(SessionSound sound, Stream data, CancellationToken cancellationToken)
    {
        using var encoder = new OpusEncoder();
        var frame = new byte[OpusEncoder.FrameBytes];
        for (var attempt = 1; !cancellationToken.IsCancellationRequested; attempt++)
        {
            using var capture = Process.Start(CaptureStart(sound)) ?? throw new InvalidOperationException($"could not start {captureProgram}");
            var errors = capture.StandardError.ReadToEndAsync(CancellationToken.None);
            var frames = 0L;
            try
            {
                var pcm = capture.StandardOutput.BaseStream;
                while (true)
                {
                    await pcm.ReadExactlyAsync(frame, cancellationToken);
                    await FileStreams.WriteFrameAsync(data, encoder.Encode(frame), cancellationToken);
                    frames++;
                }
            }
            catch (EndOfStreamException)
            {
                // parec ended: below.
            }
            finally
            {
                if (!capture.HasExited)
                {
                    capture.Kill();
                }

                await capture.WaitForExitAsync(CancellationToken.None);
            }

            var reason = (await errors).Trim();
            if (frames > 0 || attempt >= Attempts)
            {
                throw new IOException($"the capture of session {sound.SessionId}'s sound ended: {(reason.Length > 0 ? reason : "parec exited")}");
            }

            await Task.Delay(RetryAfter, cancellationToken);
            logger.LogDebug("parec of session {SessionId} could not start yet ({Reason}); trying again", sound.SessionId, reason);
        }
    }

    private static bool IsInstalled(string program) =>
        program.Contains('/', StringComparison.Ordinal) ? File.Exists(program) : CapturePath.Split(':').Any(folder => File.Exists(Path.Combine(folder, program)));

    /// <summary>parec on the session's sound server as the session's account, with nothing of the agent's environment.</summary>
    private ProcessStartInfo CaptureStart(SessionSound sound)
    {
        string[] parec =
        [
            captureProgram, "--raw", "--format=s16le", $"--rate={AudioStreams.SampleRate}", $"--channels={AudioStreams.Channels}",
            $"--device={LocalSessionProcess.SoundSink}.monitor", $"--latency-msec={AudioStreams.FrameMilliseconds}", "--client-name=streamspace-audio",
        ];
        string[] command = sound.DropPrivileges ? LocalSessionProcess.AsAccount(sound.Account, parec) : parec;
        var start = new ProcessStartInfo(command[0], command[1..])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = "/",
        };
        start.Environment.Clear();
        start.Environment["PATH"] = CapturePath;
        start.Environment["LANG"] = "C.UTF-8";
        start.Environment["PULSE_SERVER"] = LocalSessionProcess.SoundServerAddress(sound.Socket!);
        return start;
    }
}
