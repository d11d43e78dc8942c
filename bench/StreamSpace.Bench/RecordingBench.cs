using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using StreamSpace.Agent;
using StreamSpace.Agent.Platforms;
using StreamSpace.Agent.Recording;
using static StreamSpace.Bench.Figures;

namespace StreamSpace.Bench;

/// <summary>
/// What recording one busy session costs: the agent's recorder (<see cref="SessionRecorder"/>, the agent's own code)
/// run in a process of its own against a real session whose whole screen changes colour every 40 ms, so its CPU is the
/// recorder's alone and not blurred by the agent's other work; the same process idle beside it is the baseline. Also
/// the session's Xvnc, which encodes the recorder's updates, with and without it, and the bytes a second written.
/// </summary>
public static class RecordingBench
{
    private const string Template = "bench-recorded-colours";

    public static async Task RunAsync(BenchContext bench)
    {
        await bench.CreateTemplateAsync(Template,
            """sh -c 'while :; do for c in "#1f3b57" "#d8d8d8" "#7a1f1f" "#1f7a3b" "#f0c020" "#202020"; do xsetroot -solid "$c"; sleep 0.04; done; done'""", []);
        var session = await bench.LaunchAsync(Template);
        var sessionId = session.GetProperty("id").GetString()!;
        try
        {
            var vncPort = session.GetProperty("platform_metadata").GetProperty("vnc_port").GetInt32();
            var xvnc = XvncOf(vncPort);
            var seconds = bench.Quick ? 4 : 10;
            var rows = new List<Result>();
            for (var rep = 0; rep < bench.Repetitions; rep++)
            {
                rows.Add(await MeasureAsync(bench, sessionId, vncPort, xvnc, seconds));
            }

            bench.Line($"## Recording (one busy session: Xvnc 1280×800 whose whole screen changes colour every 40 ms; {seconds} s per phase)");
            bench.Line("");
            bench.Line("| | Recorder process, CPU s per s | Session's Xvnc, CPU s per s | Written, kB/s |");
            bench.Line("|---|---|---|---|");
            bench.Line($"| Not recording (the recorder's process idle) | {Figure([.. rows.Select(r => r.IdleCpu)], "0.000")} | {Figure([.. rows.Select(r => r.XvncIdleCpu)], "0.000")} | 0 |");
            bench.Line($"| Recording | {Figure([.. rows.Select(r => r.RecordingCpu)], "0.000")} | {Figure([.. rows.Select(r => r.XvncRecordingCpu)], "0.000")} | {Figure([.. rows.Select(r => r.BytesPerSecond / 1000)], "0.0")} |");
            bench.Line("");
            bench.Line($"The recorder asks for an incremental update every {SessionRecorder.RequestInterval.TotalMilliseconds:0} ms and writes what arrives as it arrives, " +
                "following the message headers but decoding no pixel. Its CPU adds to the agent's per recorded session; the Xvnc column is the session's own cost of encoding for it.");
            bench.Line("");
        }
        finally
        {
            await bench.StopAsync(sessionId);
        }
    }

    private static async Task<Result> MeasureAsync(BenchContext bench, string sessionId, int vncPort, int xvnc, int seconds)
    {
        var directory = Directory.CreateTempSubdirectory("streamspace-bench-recordings-").FullName;
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var argument in (string[])[typeof(RecordingBench).Assembly.Location, "--record-session", vncPort.ToString(CultureInfo.InvariantCulture),
                     Path.Combine(bench.AgentData, "sessions", sessionId, "password"), directory, seconds.ToString(CultureInfo.InvariantCulture)])
        {
            start.ArgumentList.Add(argument);
        }

        using var recorder = Process.Start(start)!;
        try
        {
            double xvncAt = 0, xvncIdle = 0, xvncRecording = 0;
            while (await recorder.StandardOutput.ReadLineAsync() is { } line)
            {
                switch (line)
                {
                    case "phase idle":
                        xvncAt = BenchProcess.CpuSecondsOf(xvnc);
                        break;
                    case "phase recording":
                        xvncIdle = BenchProcess.CpuSecondsOf(xvnc) - xvncAt;
                        xvncAt = BenchProcess.CpuSecondsOf(xvnc);
                        break;
                    case "phase done":
                        xvncRecording = BenchProcess.CpuSecondsOf(xvnc) - xvncAt;
                        break;
                    default:
                        if (line.StartsWith("result ", StringComparison.Ordinal))
                        {
                            var child = JsonSerializer.Deserialize<ChildResult>(line["result ".Length..])!;
                            return new Result(child.IdleCpu / seconds, child.RecordingCpu / seconds, xvncIdle / seconds, xvncRecording / seconds,
                                child.Bytes / (child.DurationMs / 1000.0));
                        }

                        break;
                }
            }

            await recorder.WaitForExitAsync();
            throw new InvalidOperationException($"the recorder process ended (exit {recorder.ExitCode}) without a result");
        }
        finally
        {
            if (!recorder.HasExited)
            {
                recorder.Kill();
            }

            Directory.Delete(directory, recursive: true);
        }
    }

    /// <summary>
    /// The recorder's process (<c>--record-session PORT PASSWORD_FILE DIRECTORY SECONDS</c>): idle for the given
    /// seconds, then recording the session for as long, each phase's CPU measured by the process itself.
    /// </summary>
    public static async Task<int> RunRecorderAsync(string[] arguments)
    {
        var port = int.Parse(arguments[0], CultureInfo.InvariantCulture);
        var passwords = await File.ReadAllBytesAsync(arguments[1]);
        var files = new RecordingFiles(new AgentSettings { RecordingsDirectory = arguments[2] });
        var window = TimeSpan.FromSeconds(int.Parse(arguments[3], CultureInfo.InvariantCulture));
        var endpoint = new VncEndpoint("127.0.0.1", port, System.Text.Encoding.Latin1.GetString(passwords, 0, 8))
        {
            ViewOnlyPassword = System.Text.Encoding.Latin1.GetString(passwords, 8, 8),
        };
        using var self = Process.GetCurrentProcess();

        Console.WriteLine("phase idle");
        var cpu = self.TotalProcessorTime;
        await Task.Delay(window);
        self.Refresh();
        var idle = (self.TotalProcessorTime - cpu).TotalSeconds;

        Console.WriteLine("phase recording");
        cpu = self.TotalProcessorTime;
        var recorder = await SessionRecorder.StartAsync(endpoint, "bench", Guid.NewGuid(), files, TimeProvider.System, CancellationToken.None);
        await Task.Delay(window);
        await recorder.StopAsync();
        self.Refresh();
        var recording = (self.TotalProcessorTime - cpu).TotalSeconds;
        Console.WriteLine("phase done");
        Console.WriteLine("result " + JsonSerializer.Serialize(new ChildResult(idle, recording, recorder.Bytes, recorder.DurationMs)));
        return 0;
    }

    /// <summary>The session's Xvnc: the process whose command line listens on its VNC port.</summary>
    private static int XvncOf(int vncPort)
    {
        foreach (var directory in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(directory), out var pid))
            {
                continue;
            }

            try
            {
                var arguments = File.ReadAllText(Path.Combine(directory, "cmdline")).Split('\0');
                if (Path.GetFileName(arguments[0]) == "Xvnc" && arguments.SkipWhile(a => a != "-rfbport").Skip(1).FirstOrDefault() == vncPort.ToString(CultureInfo.InvariantCulture))
                {
                    return pid;
                }
            }
            catch (IOException)
            {
                // A process that ended while the list was read.
            }
        }

        throw new InvalidOperationException($"no Xvnc listens on port {vncPort}");
    }

    private sealed record ChildResult(double IdleCpu, double RecordingCpu, long Bytes, long DurationMs);

    private sealed record Result(double IdleCpu, double RecordingCpu, double XvncIdleCpu, double XvncRecordingCpu, double BytesPerSecond);
}
