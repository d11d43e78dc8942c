using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;

namespace StreamSpace.Bench;

/// <summary>
/// Idle local sessions (Xvnc + openbox + xterm), added one at a time in steps up to 50: the memory each costs, the
/// agent's and the API's memory, and how long the last launch of each step took. A session's memory is every process
/// of its process session (the local platform starts each session with setsid), found through its Xvnc, whose
/// -desktop is the session id.
/// </summary>
public static class DensityBench
{
    private static readonly TimeSpan LaunchLimit = TimeSpan.FromSeconds(60);

    public static async Task RunAsync(BenchContext bench)
    {
        int[] steps = bench.Quick ? [5, 10] : [10, 20, 30, 40, 50];
        var baseline = UsedMiB();
        var launched = new List<string>();
        bench.Line($"## 5. Density (idle local sessions, launched one after another, in steps up to {steps[^1]})");
        bench.Line("");
        bench.Line("| Sessions running | Per session: PSS MiB / RSS MiB (processes) | Machine memory used since the first, per session MiB | Agent RSS MiB | API RSS MiB | POST → running of the last launch ms |");
        bench.Line("|---|---|---|---|---|---|");
        await using var events = await SessionEvents.OpenAsync(bench);
        double lastLaunch = double.NaN;
        try
        {
            foreach (var step in steps)
            {
                while (launched.Count < step)
                {
                    var start = Stopwatch.GetTimestamp();
                    using var response = await bench.Http.PostAsJsonAsync("/api/v1/sessions", new { template = "xterm" });
                    if (!response.IsSuccessStatusCode)
                    {
                        throw new InvalidOperationException($"launch {launched.Count + 1} answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
                    }

                    var id = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetString()!;
                    launched.Add(id);
                    lastLaunch = Stopwatch.GetElapsedTime(start, await events.RunningAsync(id, LaunchLimit)).TotalMilliseconds;
                }

                var processes = launched.Select(SessionProcesses).ToList();
                var pss = processes.Sum(p => p.Sum(pid => Kilobytes(pid, $"/proc/{pid}/smaps_rollup", "Pss:"))) / 1024.0 / launched.Count;
                var rss = processes.Sum(p => p.Sum(pid => Kilobytes(pid, $"/proc/{pid}/status", "VmRSS:"))) / 1024.0 / launched.Count;
                bench.Line($"| {launched.Count} | {pss:0.0} / {rss:0.0} ({processes.Average(p => p.Count):0.#} each) | {(UsedMiB() - baseline) / launched.Count:0.0} | " +
                    $"{bench.AgentProcess.MemoryMiB:0} | {bench.ApiProcess.MemoryMiB:0} | {lastLaunch:0} |");
            }
        }
        finally
        {
            await Task.WhenAll(launched.Select(bench.StopAsync));
        }

        bench.Line("");
        bench.Line("PSS shares each shared page among the processes that map it (Xvnc, openbox and xterm of every session share their " +
            "libraries), so it is what one more session costs; RSS counts shared pages in full. \"Machine memory used\" is MemTotal − " +
            "MemAvailable against the moment before the first launch, so it also holds the agent's and API's growth and the kernel's share.");
        bench.Line("");
        bench.Target($"{steps[^1]} idle desktops run; the {steps[^1]}th launches in < 2 s", $"{launched.Count} running, the last in {lastLaunch:0} ms",
            launched.Count == steps[^1] && lastLaunch < 2000);
    }

    /// <summary>The processes of a session: those in the process session of the Xvnc whose -desktop is the session id.</summary>
    private static List<int> SessionProcesses(string sessionId)
    {
        var all = Processes().ToList();
        var xvnc = all.FirstOrDefault(p => p.Arguments.Length > 0 && p.Arguments[0].EndsWith("Xvnc", StringComparison.Ordinal) && p.Arguments.Contains(sessionId));
        return xvnc.Pid == 0 ? [] : [.. all.Where(p => p.Session == xvnc.Session).Select(p => p.Pid)];
    }

    private static IEnumerable<(int Pid, int Session, string[] Arguments)> Processes()
    {
        foreach (var folder in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(folder), out var pid))
            {
                continue;
            }

            string stat, cmdline;
            try
            {
                stat = File.ReadAllText(Path.Combine(folder, "stat"));
                cmdline = File.ReadAllText(Path.Combine(folder, "cmdline"));
            }
            catch (IOException)
            {
                continue;
            }

            var session = int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[3], CultureInfo.InvariantCulture);
            yield return (pid, session, cmdline.Split('\0', StringSplitOptions.RemoveEmptyEntries));
        }
    }

    private static double Kilobytes(int pid, string file, string field)
    {
        try
        {
            var line = File.ReadLines(file).FirstOrDefault(l => l.StartsWith(field, StringComparison.Ordinal));
            return line is null ? 0 : double.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
        }
        catch (IOException)
        {
            return 0; // ended meanwhile
        }
    }

    private static double UsedMiB()
    {
        var info = File.ReadLines("/proc/meminfo").Select(l => l.Split(':')).ToDictionary(f => f[0], f => double.Parse(f[1].Trim().Split(' ')[0], CultureInfo.InvariantCulture));
        return (info["MemTotal"] - info["MemAvailable"]) / 1024;
    }
}
