using System.Diagnostics;
using System.Globalization;
using StreamSpace.Tests.Agent.Files;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Agent.Audio;

/// <summary>
/// A session pod's sound as images/session/session.sh starts it: PulseAudio from no configuration, with one socket and a
/// null sink, as the session's user (uid 1000 when the tests run as root), and a program playing a 440 Hz tone into it.
/// </summary>
public sealed class SoundServerProcess : IAsyncDisposable
{
    private readonly string directory;
    private readonly Process server;
    private readonly Process player;

    private SoundServerProcess(string directory, Process server, Process player)
    {
        this.directory = directory;
        this.server = server;
        this.player = player;
    }

    public string Socket => Path.Combine(directory, "sound", "native");

    public static async Task<SoundServerProcess> StartAsync()
    {
        var directory = Directory.CreateTempSubdirectory("streamspace-pod-sound-").FullName;
        File.SetUnixFileMode(directory, (UnixFileMode)0b111_101_101);
        var sound = Directory.CreateDirectory(Path.Combine(directory, "sound")).FullName;
        File.SetUnixFileMode(sound, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var tone = Path.Combine(directory, "tone.wav");
        await File.WriteAllBytesAsync(tone, Tone.Wav(440, 10));
        File.SetUnixFileMode(tone, (UnixFileMode)0b110_100_100);
        if (Environment.IsPrivilegedProcess)
        {
            await ProcessRunner.RunCheckedAsync("chown", $"{FileServiceProcess.SessionUid}:{FileServiceProcess.SessionUid}", sound);
        }

        var socket = Path.Combine(sound, "native");
        var server = AsSessionUser(directory, new Dictionary<string, string>
        {
            ["PULSE_RUNTIME_PATH"] = sound, ["PULSE_STATE_PATH"] = sound,
        }, "pulseaudio", "-n", "--daemonize=no", "--use-pid-file=no", "--system=no", "--exit-idle-time=-1", "--disallow-module-loading",
            "--realtime=no", "--high-priority=no", "--disable-shm=yes", "--log-target=stderr", "--log-level=error",
            $"--load=module-native-protocol-unix socket={socket} auth-anonymous=1 auth-cookie-enabled=0", "--load=module-null-sink sink_name=session rate=48000 channels=2");
        Process? player = null;
        try
        {
            await Eventually.TrueAsync(() => Task.FromResult(File.Exists(socket) || server.HasExited), TimeSpan.FromSeconds(10), "PulseAudio's socket");
            Assert.False(server.HasExited, "pulseaudio exited at start");
            player = AsSessionUser(directory, new Dictionary<string, string> { ["PULSE_SERVER"] = "unix:" + socket, ["PULSE_LATENCY_MSEC"] = "60" },
                "sh", "-c", $"while :; do paplay '{tone}' || exit; done");
            return new SoundServerProcess(directory, server, player);
        }
        catch
        {
            server.Kill(entireProcessTree: true);
            player?.Kill(entireProcessTree: true);
            throw;
        }
    }

    private static Process AsSessionUser(string home, Dictionary<string, string> environment, params string[] command)
    {
        var uid = FileServiceProcess.SessionUid.ToString(CultureInfo.InvariantCulture);
        string[] arguments = Environment.IsPrivilegedProcess ? [$"--reuid={uid}", $"--regid={uid}", "--clear-groups", "--", .. command] : command[1..];
        var start = new ProcessStartInfo(Environment.IsPrivilegedProcess ? "setpriv" : command[0], arguments)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = home,
        };
        start.Environment.Clear();
        start.Environment["PATH"] = "/usr/bin:/bin";
        start.Environment["HOME"] = home;
        foreach (var (name, value) in environment)
        {
            start.Environment[name] = value;
        }

        var process = Process.Start(start) ?? throw new InvalidOperationException($"{command[0]} did not start");
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var process in new[] { player, server })
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync();
            }

            process.Dispose();
        }

        Directory.Delete(directory, recursive: true);
    }
}
