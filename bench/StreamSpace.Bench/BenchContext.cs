using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace StreamSpace.Bench;

/// <summary>
/// What every section shares: the running API and agents, a signed-in admin client, the report being written and the
/// targets tables that Program.cs prints before the sections.
/// </summary>
public sealed class BenchContext(
    bool quick, string work, Uri api, HttpClient http, string token, string connectionString,
    BenchProcess apiProcess, BenchAgent agent, IReadOnlyDictionary<string, string> environment)
{
    private readonly StringBuilder report = new();
    private readonly List<string> targets = [];
    private readonly List<string> notes = [];
    private readonly Dictionary<Goal, GoalResult> goals = [];
    private readonly List<BenchAgent> agents = [agent];

    public bool Quick => quick;

    public int Repetitions => quick ? 1 : 3;

    /// <summary>A fresh temporary folder for this run's logs and state.</summary>
    public string Work => work;

    public Uri Api => api;

    /// <summary>Signed in as the admin.</summary>
    public HttpClient Http => http;

    public string Token => token;

    public string ConnectionString => connectionString;

    public BenchProcess ApiProcess => apiProcess;

    /// <summary>The agent with default settings, which every section but the tunnel's variants uses.</summary>
    public BenchAgent Agent => agent;

    public BenchProcess AgentProcess => agent.Process;

    /// <summary>The main agent's AGENT_DATA_DIR (session folders with their VNC passwords live under it).</summary>
    public string AgentData => agent.DataDirectory;

    /// <summary>PATH, HOME and the runtime settings every process of the system under test starts with.</summary>
    public IReadOnlyDictionary<string, string> Environment => environment;

    public string Report => report.ToString();

    public IReadOnlyList<string> Targets => targets;

    public IReadOnlyList<string> Notes => notes;

    public IReadOnlyDictionary<Goal, GoalResult> Goals => goals;

    /// <summary>Prints a line and adds it to docs/benchmarks.md.</summary>
    public void Line(string text)
    {
        Console.WriteLine(text);
        report.AppendLine(text);
    }

    /// <summary>A row of the "Other targets" table.</summary>
    public void Target(string target, string measured, bool met) => targets.Add($"| {target} | {measured} | {(met ? "met" : "missed")} |");

    /// <summary>The figure for one of issue 15's goals, measured beside its anchor in this run.</summary>
    public void SetGoal(Goal goal, string measured, string anchor, string ratio, bool met) => goals[goal] = new GoalResult(measured, anchor, ratio, met);

    /// <summary>A sentence for the closing notes (what was not measured, and why).</summary>
    public void Note(string text) => notes.Add(text);

    /// <summary>
    /// Starts another agent process on this API, registered through POST /api/v1/agents, with settings of its own on
    /// top of the main agent's (the tunnel's variants: AGENT_DATA_PATH, AGENT_SPLICE). Stopped with the run.
    /// </summary>
    public async Task<BenchAgent> StartAgentAsync(string id, IReadOnlyDictionary<string, string> settings)
    {
        using var created = await http.PostAsJsonAsync("/api/v1/agents", new { id });
        if (!created.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"could not register agent {id}: {(int)created.StatusCode} {await created.Content.ReadAsStringAsync()}");
        }

        var key = (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("key").GetString()!;
        var started = BenchAgent.Start(id, key, api, environment, settings, work);
        agents.Add(started);
        await WaitOnlineAsync(id);
        return started;
    }

    /// <summary>Drains an extra agent, so no later launch lands on it, and stops its process.</summary>
    public async Task StopAgentAsync(BenchAgent extra)
    {
        (await http.PostAsync($"/api/v1/agents/{extra.Id}/drain", null)).EnsureSuccessStatusCode();
        agents.Remove(extra);
        extra.Process.Dispose();
    }

    public Task WaitOnlineAsync(string agentId) =>
        Until(async () => (await http.GetStringAsync($"/api/v1/agents/{agentId}")).Contains("\"status\":\"online\"", StringComparison.Ordinal),
            $"agent {agentId} to come online");

    /// <summary>Launches a session on one given agent: the others are drained while it is placed.</summary>
    public async Task<JsonElement> LaunchOnAsync(BenchAgent target, string template)
    {
        var others = agents.Where(a => a != target).ToList();
        foreach (var other in others)
        {
            (await http.PostAsync($"/api/v1/agents/{other.Id}/drain", null)).EnsureSuccessStatusCode();
        }

        try
        {
            return await LaunchAsync(template);
        }
        finally
        {
            foreach (var other in others)
            {
                (await http.DeleteAsync($"/api/v1/agents/{other.Id}/drain")).EnsureSuccessStatusCode();
            }
        }
    }

    /// <summary>Launches a session and waits (at most a minute) until it runs; returns the session as the API shows it.</summary>
    public async Task<JsonElement> LaunchAsync(string template = "xterm")
    {
        using var response = await http.PostAsJsonAsync("/api/v1/sessions", new { template });
        if (response.StatusCode != HttpStatusCode.Accepted)
        {
            throw new InvalidOperationException($"launching {template} answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        }

        var id = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetString()!;
        return await RunningAsync(id, TimeSpan.FromMinutes(1));
    }

    /// <summary>Polls the session until it runs; fails when it failed or the time is up.</summary>
    public async Task<JsonElement> RunningAsync(string id, TimeSpan limit)
    {
        var deadline = DateTime.UtcNow + limit;
        while (true)
        {
            var current = await http.GetFromJsonAsync<JsonElement>($"/api/v1/sessions/{id}");
            switch (current.GetProperty("state").GetString())
            {
                case "running": return current;
                case "failed": throw new InvalidOperationException($"session {id} failed: {current.GetProperty("failure_reason")}");
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"session {id} was not running {limit.TotalSeconds:0} s after its launch (state {current.GetProperty("state")})");
            }

            await Task.Delay(20);
        }
    }

    /// <summary>Stops a session and waits until its processes are gone, so none outlives the run.</summary>
    public async Task StopAsync(string sessionId)
    {
        await http.DeleteAsync($"/api/v1/sessions/{sessionId}");
        await Until(async () =>
            (await http.GetFromJsonAsync<JsonElement>($"/api/v1/sessions/{sessionId}")).GetProperty("state").GetString() is "stopped" or "failed",
            $"session {sessionId} to stop");
    }

    public async Task CreateTemplateAsync(string name, string command, Dictionary<string, string> env)
    {
        using var created = await http.PostAsJsonAsync("/api/v1/templates", new Dictionary<string, object>
        {
            ["name"] = name,
            ["display_name"] = name,
            ["command"] = command,
            ["env"] = env,
            ["idle_timeout"] = "8h",
        });
        if (!created.IsSuccessStatusCode && created.StatusCode != HttpStatusCode.Conflict)
        {
            throw new InvalidOperationException($"could not create template {name}: {(int)created.StatusCode} {await created.Content.ReadAsStringAsync()}");
        }
    }

    /// <summary>A fresh single-use viewer URL for the session's /vnc WebSocket.</summary>
    public async Task<Uri> VncUrlAsync(string id)
    {
        var ticket = await (await http.PostAsync($"/api/v1/sessions/{id}/connect", null)).Content.ReadFromJsonAsync<JsonElement>();
        return new Uri(new UriBuilder(api) { Scheme = "ws" }.Uri, ticket.GetProperty("url").GetString());
    }

    /// <summary>Waits for a condition, polling every 100 ms; fails with a message naming it when the time is up.</summary>
    public static async Task Until(Func<Task<bool>> condition, string what, TimeSpan? timeout = null)
    {
        var limit = timeout ?? TimeSpan.FromSeconds(60);
        var deadline = DateTime.UtcNow + limit;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"{what} did not happen within {limit.TotalSeconds:0} s");
            }

            await Task.Delay(100);
        }
    }

    /// <summary>Waits for a task at most <paramref name="limit"/>; fails with a message naming what was awaited.</summary>
    public static async Task<T> Within<T>(Task<T> task, TimeSpan limit, string what)
    {
        try
        {
            return await task.WaitAsync(limit);
        }
        catch (TimeoutException) when (!task.IsCompleted)
        {
            // This wait's own limit; a TimeoutException from inside the task keeps its own message.
            throw new TimeoutException($"{what} did not happen within {limit.TotalSeconds:0.#} s");
        }
    }

    public static async Task Within(Task task, TimeSpan limit, string what)
    {
        try
        {
            await task.WaitAsync(limit);
        }
        catch (TimeoutException) when (!task.IsCompleted)
        {
            throw new TimeoutException($"{what} did not happen within {limit.TotalSeconds:0.#} s");
        }
    }

    public static async Task<T?> Try<T>(Func<Task<T>> action) where T : class
    {
        try
        {
            return await action();
        }
        catch (HttpRequestException)
        {
            return null;
        }
    }

    public static Task UntilListening(int port, string what) => Until(async () =>
    {
        try
        {
            using var client = new TcpClient();
            await client.ConnectAsync(IPAddress.Loopback, port);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }, what);

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Stops the agents this context started beside the main one.</summary>
    public void StopExtraAgents()
    {
        foreach (var extra in agents.Where(a => a != agent))
        {
            extra.Process.Dispose();
        }
    }
}

/// <summary>Issue 15's goals, each reported beside websockify or its own limit in the same run.</summary>
public enum Goal
{
    Throughput,
    CpuPerGiB,
    RoundTrip,
    PacedStreams,
    ConcurrentStarts,
}

public sealed record GoalResult(string Measured, string Anchor, string Ratio, bool Met);

/// <summary>An agent process of the system under test, with the settings it was started with.</summary>
public sealed class BenchAgent(string id, BenchProcess process, string dataDirectory, int healthPort, IReadOnlyDictionary<string, string> settings)
{
    public string Id => id;

    public BenchProcess Process => process;

    public string DataDirectory => dataDirectory;

    /// <summary>The agent's health port, which also serves /metrics once the agent has them.</summary>
    public int HealthPort => healthPort;

    /// <summary>The settings that set it apart from the main agent (empty for the main agent).</summary>
    public IReadOnlyDictionary<string, string> Settings => settings;

    /// <summary>
    /// The agents' data folders: outside the run's folder (mode 0700, it holds the logs), in one of mode 0711, since a
    /// root agent's session accounts must pass through the parents of their homes (the agent refuses to start otherwise).
    /// </summary>
    private static readonly Lazy<string> DataRoot = new(() =>
    {
        var folder = Directory.CreateTempSubdirectory("streamspace-bench-agents-").FullName;
        File.SetUnixFileMode(folder, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);
        return folder;
    });

    /// <summary>A folder that session accounts can read (the synthetic server's fake Xvnc and its copy of the bench).</summary>
    public static string SessionReadableFolder(string name)
    {
        var folder = Path.Combine(DataRoot.Value, name);
        Directory.CreateDirectory(folder);
        File.SetUnixFileMode(folder, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        return folder;
    }

    public static BenchAgent Start(string id, string key, Uri api, IReadOnlyDictionary<string, string> environment,
        IReadOnlyDictionary<string, string> settings, string work)
    {
        var dataDirectory = Path.Combine(DataRoot.Value, id);
        var healthPort = BenchContext.FreePort();
        var variables = new Dictionary<string, string>(environment)
        {
            ["CONTROL_PLANE_URL"] = new UriBuilder(api) { Scheme = "ws", Path = "/agent/ws" }.ToString(),
            ["AGENT_ID"] = id,
            ["AGENT_KEY"] = key,
            ["PLATFORM"] = "local",
            ["MAX_SESSIONS"] = "100",
            ["AGENT_DATA_DIR"] = dataDirectory,
            ["AGENT_HEALTH_PORT"] = $"{healthPort}",
            ["Logging__LogLevel__Default"] = "Warning",
        };
        foreach (var (name, value) in settings)
        {
            variables[name] = value;
        }

        var process = BenchProcess.Start(id, "dotnet", [BenchPaths.Built("StreamSpace.Agent")], variables, Path.Combine(work, $"{id}.log"));
        return new BenchAgent(id, process, dataDirectory, healthPort, settings);
    }

    /// <summary>
    /// Which relay path the agent says its open viewers use (its streamspace_agent_data_connections series), or null
    /// when its health port serves no such metric (an agent before tunnel v2).
    /// </summary>
    public async Task<string?> ReportedPathAsync()
    {
        using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        try
        {
            var metrics = await client.GetStringAsync($"http://127.0.0.1:{healthPort}/metrics");
            var open = metrics.Split('\n')
                .Where(l => l.StartsWith("streamspace_agent_data_connections", StringComparison.Ordinal) && !l.TrimEnd().EndsWith(" 0", StringComparison.Ordinal))
                .Select(l => l.Split('{', '}') is [_, var labels, ..] ? labels : l)
                .ToList();
            return open.Count == 0 ? null : string.Join("; ", open);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return null;
        }
    }
}
