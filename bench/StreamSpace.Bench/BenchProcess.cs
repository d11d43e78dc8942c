using System.Diagnostics;
using System.Globalization;

namespace StreamSpace.Bench;

/// <summary>A process of the system under test, whose CPU time is read from /proc so every process on a path counts.</summary>
public sealed class BenchProcess(Process process, string name, bool forksPerConnection) : IDisposable
{
    public string Name => name;

    public int Id => process.Id;

    /// <summary>The process ended (a crash at start, for one), with its exit code.</summary>
    public bool HasExited => process.HasExited;

    public int ExitCode => process.ExitCode;

    /// <param name="forksPerConnection">
    /// The process serves each connection from a forked child (websockify): the CPU of children that have ended and been
    /// reaped counts too. Not for the agent, whose reaped children are ended sessions, not relay work.
    /// </param>
    public static BenchProcess Start(string name, string fileName, IEnumerable<string> arguments, IReadOnlyDictionary<string, string> environment, string logFile,
        bool forksPerConnection = false)
    {
        var start = new ProcessStartInfo(fileName, arguments) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }

        var process = Process.Start(start) ?? throw new InvalidOperationException($"{name} did not start");
        var log = new StreamWriter(logFile) { AutoFlush = true };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (log) log.WriteLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (log) log.WriteLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return new BenchProcess(process, name, forksPerConnection);
    }

    /// <summary>
    /// User plus system CPU seconds used so far by the process and its live descendants in its own session
    /// (websockify serves each connection from a forked child, whose time the parent's counters do not show until it
    /// exits). A local agent's sessions run in sessions of their own (setsid), so the VNC server's work is not
    /// counted as the relay's.
    /// </summary>
    public double CpuSeconds => Tree(process.Id, SessionOf(process.Id)).Sum(CpuSecondsOf) + (forksPerConnection ? ReapedChildrenCpuSecondsOf(process.Id) : 0);

    /// <summary>The CPU seconds of the process's children that ended and were waited for (cutime + cstime).</summary>
    private static double ReapedChildrenCpuSecondsOf(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return (long.Parse(fields[13], CultureInfo.InvariantCulture) + long.Parse(fields[14], CultureInfo.InvariantCulture)) / 100.0;
    }

    private static IEnumerable<int> Tree(int pid, int session)
    {
        yield return pid;
        foreach (var task in Directory.EnumerateDirectories($"/proc/{pid}/task"))
        {
            var children = File.Exists(Path.Combine(task, "children")) ? File.ReadAllText(Path.Combine(task, "children")) : "";
            foreach (var child in children.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(c => int.Parse(c, CultureInfo.InvariantCulture)))
            {
                if (SessionOf(child) != session)
                {
                    continue;
                }

                foreach (var descendant in Tree(child, session))
                {
                    yield return descendant;
                }
            }
        }
    }

    /// <summary>The session id (the 6th field of /proc/pid/stat), or -1 once the process is gone.</summary>
    private static int SessionOf(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[3], CultureInfo.InvariantCulture);
        }
        catch (IOException)
        {
            return -1;
        }
    }

    /// <summary>Resident memory in MiB.</summary>
    public double MemoryMiB
    {
        get
        {
            var line = File.ReadLines($"/proc/{process.Id}/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
            return double.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024;
        }
    }

    public static double CpuSecondsOf(int pid)
    {
        // Fields after the command name (which may contain spaces): utime is the 14th field, stime the 15th.
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return (long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)) / 100.0;
    }

    public void Dispose()
    {
        if (!process.HasExited)
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit(5000);
        }

        process.Dispose();
    }
}
