using System.Diagnostics;
using System.Text;

namespace StreamSpace.Tests.Infrastructure;

/// <summary>
/// The built agent as its own process (<c>dotnet StreamSpace.Agent.dll</c>) on the local platform, for what only a
/// process of its own shows: its open file descriptors and its threads.
/// </summary>
public sealed class AgentProcess : IAsyncDisposable
{
    private readonly Process process;
    private readonly StringBuilder log = new();

    private AgentProcess(Process process, string dataDirectory)
    {
        this.process = process;
        DataDirectory = dataDirectory;
        process.OutputDataReceived += (_, e) => Append(e.Data);
        process.ErrorDataReceived += (_, e) => Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public int Pid => process.Id;

    public bool HasExited => process.HasExited;

    public string DataDirectory { get; }

    public string Log
    {
        get
        {
            lock (log)
            {
                return log.ToString();
            }
        }
    }

    /// <param name="uid">An account to run as instead of this one (its uid as its group too; no capabilities), as a
    /// container's non-root user is; it owns the data directory.</param>
    public static AgentProcess Start(Uri hubUrl, string agentId, string agentKey, IReadOnlyDictionary<string, string>? settings = null, int? uid = null)
    {
        var dataDirectory = Directory.CreateTempSubdirectory("streamspace-agent-").FullName;
        string[] agent = ["dotnet", Repository.BuiltAssembly("StreamSpace.Agent")];
        string[] command = uid is { } id
            ? ["setpriv", $"--reuid={id}", $"--regid={id}", $"--groups={id}", "--inh-caps=-all", "--bounding-set=-all", .. agent]
            : agent;
        if (uid is { } owner)
        {
            using var chown = Process.Start("chown", [$"{owner}:{owner}", dataDirectory]);
            chown.WaitForExit();
        }

        var start = new ProcessStartInfo(command[0], command[1..])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.Environment["CONTROL_PLANE_URL"] = hubUrl.ToString();
        start.Environment["AGENT_ID"] = agentId;
        start.Environment["AGENT_KEY"] = agentKey;
        start.Environment["PLATFORM"] = "local";
        start.Environment["HEARTBEAT_INTERVAL"] = "1s";
        start.Environment["AGENT_DATA_DIR"] = dataDirectory;
        start.Environment["LOCAL_ISOLATION"] = Environment.IsPrivilegedProcess && uid is null ? "accounts" : "none";
        if (uid is not null)
        {
            start.Environment["HOME"] = dataDirectory;
        }

        foreach (var (key, value) in settings ?? new Dictionary<string, string>())
        {
            start.Environment[key] = value;
        }

        return new AgentProcess(Process.Start(start) ?? throw new InvalidOperationException("dotnet did not start"), dataDirectory);
    }

    /// <summary>How many file descriptors the agent has open now.</summary>
    public int OpenDescriptors() => Directory.GetFiles($"/proc/{Pid}/fd").Length;

    /// <summary>The agent's threads, by the name the kernel knows them by (at most 15 characters).</summary>
    public IReadOnlyList<string> ThreadNames() =>
        Directory.GetDirectories($"/proc/{Pid}/task").Select(task =>
        {
            try
            {
                return File.ReadAllText(Path.Combine(task, "comm")).Trim();
            }
            catch (IOException)
            {
                return "";
            }
        }).ToList();

    public async ValueTask DisposeAsync()
    {
        if (!process.HasExited)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }

        process.Dispose();
        await AgentHost.RemoveSessionAccountsAsync(DataDirectory);
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (log)
        {
            log.AppendLine(line);
        }
    }
}
