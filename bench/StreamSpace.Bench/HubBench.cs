using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using Npgsql;
using StreamSpace.Tests.Infrastructure;
using static StreamSpace.Bench.Figures;

namespace StreamSpace.Bench;

/// <summary>
/// Section 7: 1,000, 5,000 and 10,000 simulated agents (bench/StreamSpace.Bench.Agents, a separate process) first on
/// one API process of its own, then on two API processes on one database behind Debian's HAProxy (round robin, no
/// stickiness), each run on a fresh database so neither disturbs another section. Agents are registered with hashed
/// keys in the database; each heartbeats every 30 s (the default), its first at a random point of the interval.
/// Heartbeat handling time is each API's own histogram (streamspace.agent_hub.heartbeat.duration: parsed frame →
/// committed write), read with dotnet-counters over each steady window, since the protocol has no heartbeat answer a
/// client could time. Agents held per replica are each replica's streamspace_agents_connected gauge on /metrics.
/// </summary>
public static class HubBench
{
    private const string CountersVersion = "10.0.750501";
    private const string Meter = "StreamSpace.Api.AgentHub";
    private const int ConnectRate = 1000;
    private static readonly TimeSpan HeartbeatInterval = TimeSpan.FromSeconds(30);

    public static async Task RunAsync(BenchContext bench, Func<string, string> built)
    {
        var levels = bench.Quick ? new[] { 1000 } : [1000, 5000, 10_000];
        // A window of one heartbeat interval: every agent heartbeats once in it.
        var window = bench.Quick ? TimeSpan.FromSeconds(10) : HeartbeatInterval;
        var counters = await DotnetCountersAsync(bench);
        var apiDll = built("StreamSpace.Api");

        bench.Line($"## 7. Agent hub (simulated agents, heartbeat every {HeartbeatInterval.TotalSeconds:0} s, {window.TotalSeconds:0}-s steady window)");
        bench.Line("");
        bench.Line("| API replicas | Agents connected | Held per replica (`streamspace_agents_connected`) | Newcomers welcomed in s | API CPU % of a core, per replica | HAProxy CPU % | API RSS MiB, per replica " +
            "| Agents whose heartbeat the API recorded in the window | Heartbeats recorded/s | Heartbeat handling p50 / p99 ms, per replica |");
        bench.Line("|---|---|---|---|---|---|---|---|---|---|");

        string restart;
        List<LevelFigures> one;
        await using (var hub = await Hub.StartAsync(bench, apiDll, replicas: 1, levels[^1]))
        {
            one = await MeasureLevelsAsync(bench, counters, hub, levels, window);
            restart = await RestartAsync(bench, counters, hub, levels[^1]);
        }

        List<LevelFigures> two;
        IReadOnlyList<string> openFiles;
        await using (var hub = await Hub.StartAsync(bench, apiDll, replicas: 2, levels[^1]))
        {
            two = await MeasureLevelsAsync(bench, counters, hub, levels, window);
            openFiles = hub.OpenFiles;
        }

        bench.Line("");
        bench.Line($"Heartbeats are counted where the API records them: the agents whose `last_heartbeat` an API replica committed during the window " +
            $"(read from PostgreSQL, on the database's clock). The window lasts {window.TotalSeconds:0} s of the {HeartbeatInterval.TotalSeconds:0}-s interval, " +
            $"so about {window / HeartbeatInterval:P0} of the agents heartbeat in it; in a full run that is every agent, and a count below the agents " +
            "connected means heartbeats the API did not handle in time. With two replicas, every agent connects to HAProxy (round robin, no stickiness, " +
            "health checks on /health; as many HAProxy processes on one port, with SO_REUSEPORT, as the open-file hard limit calls for, " +
            "since each agent holds two of HAProxy's descriptors) and stays on the replica it was given; each replica's figures are its own process's, CPU and RSS are read from /proc, " +
            "and the percentiles are each replica's own histogram (they cannot be merged). " +
            $"Open-file limits of the two-replica run's processes (`ulimit -n`, read from /proc; each must exceed what it holds): {string.Join(", ", openFiles.Distinct())}.");
        bench.Line("");
        bench.Line($"Time for all {levels[^1]:N0} agents to connect, summed over the steps above (the simulator opens at most {ConnectRate:N0} connections/s, " +
            $"so {levels[^1] / (double)ConnectRate:0} s is the floor): one replica {one.Sum(l => l.ConnectSeconds):0.0} s, " +
            $"two replicas behind HAProxy {two.Sum(l => l.ConnectSeconds):0.0} s.");
        bench.Line("");
        bench.Line(restart);
        bench.Line("");

        var largest = two[^1];
        if (window >= HeartbeatInterval)
        {
            bench.Target($"agent hub, two API replicas behind HAProxy: {largest.Agents:N0} agents, every heartbeat recorded by the API within its interval",
                $"{largest.Recorded:N0} of {largest.Agents:N0} (held {largest.Held})", largest.Recorded == largest.Agents);
        }

        bench.Target($"agent hub, two API replicas behind HAProxy: {largest.Agents:N0} agents connected, heartbeat p99 < 50 ms on each replica",
            $"p99 {largest.P99s}", largest.WorstP99 < 50);
    }

    /// <summary>The figures of one step, for the summary lines and the targets.</summary>
    private sealed record LevelFigures(int Agents, double ConnectSeconds, long Recorded, string Held, string P99s, double WorstP99);

    /// <summary>
    /// Adds simulated agents in steps up to each level, through the hub's entry (the API, or HAProxy in front of the
    /// replicas), and writes a row per level after one steady window.
    /// </summary>
    private static async Task<List<LevelFigures>> MeasureLevelsAsync(BenchContext bench, string? counters, Hub hub, int[] levels, TimeSpan window)
    {
        var figures = new List<LevelFigures>();
        var connected = 0;
        foreach (var level in levels)
        {
            var clock = Stopwatch.StartNew();
            await hub.StartAgentsAsync(connected, level - connected);
            connected = level;
            await hub.UntilWelcomedAsync(level, TimeSpan.FromMinutes(3));
            var connectSeconds = clock.Elapsed.TotalSeconds;
            var held = await hub.UntilHeldAsync(level, TimeSpan.FromMinutes(1));
            // The first heartbeats of the newcomers are spread over one interval from their welcome.
            await Task.Delay(TimeSpan.FromSeconds(bench.Quick ? 2 : 5));

            var cpuBefore = hub.Replicas.Select(r => r.Process.CpuSeconds).ToArray();
            var balancerCpuBefore = hub.Balancer?.CpuSeconds ?? 0;
            var windowStart = await DatabaseNowAsync(hub.ConnectionString);
            var windowClock = Stopwatch.StartNew();
            var histograms = await Task.WhenAll(hub.Replicas.Select(r => CollectAsync(counters, r.Process.Id, window)));
            var seconds = windowClock.Elapsed.TotalSeconds;
            var cpu = hub.Replicas.Select((r, i) => (r.Process.CpuSeconds - cpuBefore[i]) / seconds * 100);
            var balancerCpu = hub.Balancer is { } balancer ? $"{(balancer.CpuSeconds - balancerCpuBefore) / seconds * 100:0}" : "—";
            var recorded = await HeartbeatsRecordedSinceAsync(hub.ConnectionString, windowStart);
            var p50s = histograms.Select(h => h.GetValueOrDefault(("heartbeat", 50), double.NaN)).ToArray();
            var p99s = histograms.Select(h => h.GetValueOrDefault(("heartbeat", 99), double.NaN)).ToArray();
            var perReplica = string.Join(" + ", held.Select(h => $"{h:N0}"));
            var worstP99 = p99s.Any(double.IsNaN) ? double.NaN : p99s.Max();
            figures.Add(new LevelFigures(level, connectSeconds, recorded, perReplica, string.Join("; ", p99s.Select(p => $"{p:0.0} ms")), worstP99));

            bench.Line($"| {hub.Replicas.Count} | {level:N0} ({hub.Welcomed():N0} welcomed) | {perReplica} | {connectSeconds:0.0} ({level - (figures.Count > 1 ? figures[^2].Agents : 0):N0}) " +
                $"| {string.Join(" + ", cpu.Select(c => $"{c:0}"))} | {balancerCpu} | {string.Join(" + ", hub.Replicas.Select(r => $"{r.Process.MemoryMiB:0}"))} " +
                $"| {recorded:N0} of {level:N0} | {recorded / seconds:0} | {string.Join("; ", p50s.Zip(p99s, (p50, p99) => $"{p50:0.0} / {p99:0.0}"))} |");
        }

        return figures;
    }

    /// <summary>
    /// Kills the one API under all its agents and starts it again, per repetition; the paragraph that reports the
    /// reconnect figures.
    /// </summary>
    private static async Task<string> RestartAsync(BenchContext bench, string? counters, Hub hub, int total)
    {
        var api = hub.Replicas[0];
        var fromStart = new List<double>();
        var fromReady = new List<double>();
        var helloP99 = new List<double>();
        for (var rep = 0; rep < bench.Repetitions; rep++)
        {
            await hub.UntilWelcomedAsync(total, TimeSpan.FromMinutes(3));
            api.Kill();
            await BenchContext.Until(() => Task.FromResult(hub.Welcomed() == 0), "every simulated agent to notice the API is gone", TimeSpan.FromMinutes(1));
            var clock = Stopwatch.StartNew();
            api.Start();
            // dotnet-counters attaches as the runtime starts, before the first hello.
            var histogram = CollectAsync(counters, api.Process.Id, TimeSpan.FromSeconds(60));
            var healthy = api.WaitUntilHealthyAsync().ContinueWith(_ => clock.Elapsed.TotalSeconds, TaskScheduler.Default);
            await BenchContext.Until(() => Task.FromResult(api.Process.HasExited
                ? throw new InvalidOperationException($"the restarted API exited with {api.Process.ExitCode}; see {api.LogFile}")
                : hub.Welcomed() >= total), $"{total} simulated agents to reconnect (log: {api.LogFile})", TimeSpan.FromMinutes(5));
            fromStart.Add(clock.Elapsed.TotalSeconds);
            fromReady.Add(await healthy);
            helloP99.Add((await histogram).GetValueOrDefault(("hello", 99), double.NaN));
        }

        return $"Reconnect after an API restart (one replica, SIGKILL, then started again) with {total:N0} agents (real agent backoff: full jitter, 1 s doubling to 30 s): " +
            $"all welcomed again {Figure(fromStart, "0.0")} s after the new API process started; /health first answered healthy after {Figure(fromReady, "0.0")} s; " +
            $"hello handling p99 over the first minute {Figure(helloP99, "0")} ms.";
    }

    /// <summary>
    /// Registers agents straight in the database, in one statement: through POST /api/v1/agents, 10,000 take minutes
    /// on a busy 2-core box. The row is what the endpoint writes: the key's SHA-256 in hex (AgentKeys.Hash), here
    /// computed by PostgreSQL. Returns a file of "id key" lines.
    /// </summary>
    private static async Task<string> RegisterAsync(BenchContext bench, string connectionString, int count, string name)
    {
        var ids = Enumerable.Range(0, count).Select(i => $"sim-{i:D5}").ToArray();
        var keys = ids.Select(_ => "ssak_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32))).ToArray();
        await using (var connection = new NpgsqlConnection(connectionString))
        {
            await connection.OpenAsync();
            await using var insert = new NpgsqlCommand(
                "INSERT INTO agents (id, key_hash) SELECT id, encode(sha256(convert_to(key, 'UTF8')), 'hex') FROM unnest(@ids, @keys) AS a(id, key)",
                connection);
            insert.Parameters.AddWithValue("ids", ids);
            insert.Parameters.AddWithValue("keys", keys);
            await insert.ExecuteNonQueryAsync();
        }

        var file = Path.Combine(bench.Work, $"{name}-agent-keys.txt");
        await File.WriteAllLinesAsync(file, ids.Zip(keys, (id, key) => $"{id} {key}"));
        return file;
    }

    /// <summary>
    /// The hub histograms' p50 and p99 over one window, as dotnet-counters reads them from the running API (EventPipe).
    /// Keys: ("heartbeat" | "hello", percentile).
    /// </summary>
    private static async Task<Dictionary<(string, int), double>> CollectAsync(string? counters, int pid, TimeSpan window)
    {
        var figures = new Dictionary<(string, int), double>();
        if (counters is null)
        {
            await Task.Delay(window);
            return figures;
        }

        var output = Path.Combine(Path.GetTempPath(), $"streamspace-counters-{Guid.NewGuid():N}.json");
        var seconds = (int)window.TotalSeconds;
        // One refresh per window, so each percentile covers every measurement of the window; the short extra
        // duration lets the one report be written before the tool stops.
        using (var collect = Process.Start(new ProcessStartInfo(counters,
            ["collect", "-p", $"{pid}", "--counters", Meter, "--refresh-interval", $"{seconds}", "--format", "json", "-o", output,
             "--duration", TimeSpan.FromSeconds(seconds + 2).ToString(@"hh\:mm\:ss", CultureInfo.InvariantCulture)])
        { RedirectStandardOutput = true, RedirectStandardError = true })!)
        {
            _ = collect.StandardOutput.ReadToEndAsync();
            _ = collect.StandardError.ReadToEndAsync();
            try
            {
                await BenchContext.Within(collect.WaitForExitAsync(), window + TimeSpan.FromSeconds(60), "dotnet-counters to finish its window");
            }
            catch (TimeoutException)
            {
                collect.Kill();
                throw;
            }
        }

        if (!File.Exists(output))
        {
            return figures;
        }

        using var report = JsonDocument.Parse(await File.ReadAllTextAsync(output));
        File.Delete(output);
        // The last report of each percentile is the one that covers the window.
        foreach (var e in report.RootElement.GetProperty("Events").EnumerateArray())
        {
            var name = e.GetProperty("name").GetString()!;
            var tags = e.GetProperty("tags").GetString()!;
            if (!tags.StartsWith("Percentile=", StringComparison.Ordinal))
            {
                continue;
            }

            var kind = name.Contains(".heartbeat.", StringComparison.Ordinal) ? "heartbeat" : name.Contains(".hello.", StringComparison.Ordinal) ? "hello" : null;
            if (kind is not null)
            {
                figures[(kind, int.Parse(tags["Percentile=".Length..], CultureInfo.InvariantCulture))] = e.GetProperty("value").GetDouble();
            }
        }

        return figures;
    }

    /// <summary>dotnet-counters from PATH, or installed (pinned) into a cache folder; null, with a note, when neither works.</summary>
    private static async Task<string?> DotnetCountersAsync(BenchContext bench)
    {
        var folder = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "streamspace-bench", "tools");
        var installed = Path.Combine(folder, "dotnet-counters");
        if (File.Exists(installed))
        {
            return installed;
        }

        var onPath = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Select(dir => Path.Combine(dir, "dotnet-counters")).FirstOrDefault(File.Exists);
        if (onPath is not null)
        {
            return onPath;
        }

        using var install = Process.Start(new ProcessStartInfo("dotnet", ["tool", "install", "dotnet-counters", "--version", CountersVersion, "--tool-path", folder])
        { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var error = install.StandardError.ReadToEndAsync();
        await install.StandardOutput.ReadToEndAsync();
        await BenchContext.Within(install.WaitForExitAsync(), TimeSpan.FromMinutes(5), "dotnet tool install dotnet-counters");
        if (install.ExitCode == 0 && File.Exists(installed))
        {
            return installed;
        }

        bench.Note($"Heartbeat handling times are missing: dotnet-counters {CountersVersion} could not be installed ({(await error).Trim()}).");
        return null;
    }

    private static async Task<DateTime> DatabaseNowAsync(string connectionString)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        return (DateTime)(await new NpgsqlCommand("SELECT now()", connection).ExecuteScalarAsync())!;
    }

    /// <summary>Agents whose heartbeat the API wrote since the given database time (a simulated agent's hello was earlier).</summary>
    private static async Task<long> HeartbeatsRecordedSinceAsync(string connectionString, DateTime since)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var count = new NpgsqlCommand("SELECT count(*) FROM agents WHERE id LIKE 'sim-%' AND last_heartbeat > @since", connection);
        count.Parameters.AddWithValue("since", since);
        return (long)(await count.ExecuteScalarAsync())!;
    }

    private readonly record struct AgentsStatus(long Welcomed);

    /// <summary>The last status line a simulated-agents process wrote to its log.</summary>
    private static AgentsStatus Status(string log)
    {
        string? last = null;
        using (var reader = new StreamReader(new FileStream(log, FileMode.Open, FileAccess.Read, FileShare.ReadWrite)))
        {
            while (reader.ReadLine() is { } line)
            {
                if (line.StartsWith("status ", StringComparison.Ordinal))
                {
                    last = line;
                }
            }
        }

        if (last is null)
        {
            return default;
        }

        var fields = last.Split(' ').Skip(1).Select(f => f.Split('=')).ToDictionary(f => f[0], f => long.Parse(f[1], CultureInfo.InvariantCulture));
        return new AgentsStatus(fields["welcomed"]);
    }

    /// <summary>"Max open files" (the soft limit, which the process may use) of a running process, from /proc.</summary>
    private static long OpenFilesLimit(int pid)
    {
        var line = File.ReadLines($"/proc/{pid}/limits").First(l => l.StartsWith("Max open files", StringComparison.Ordinal));
        var soft = line["Max open files".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries)[0];
        return soft == "unlimited" ? long.MaxValue : long.Parse(soft, CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// Fails the section, naming the process and its limit, when it may not open the descriptors it will need; else
    /// the limit.
    /// </summary>
    private static long RequireOpenFiles(BenchProcess process, long needed)
    {
        var limit = OpenFilesLimit(process.Id);
        return limit >= needed ? limit
            : throw new InvalidOperationException($"{process.Name} may open {limit:N0} files (ulimit -n), fewer than the {needed:N0} it needs here; raise the limit");
    }

    /// <summary>
    /// One hub under test: its own database with the agents registered, one or more API replicas on it, HAProxy in
    /// front of them when there are several, and the simulated-agents processes started so far.
    /// </summary>
    private sealed class Hub(BenchContext bench, string connectionString, IReadOnlyList<HubApi> replicas, HubBalancer? balancer, string keys)
        : IAsyncDisposable
    {
        private readonly List<(BenchProcess Process, string Log)> simulations = [];
        private readonly HttpClient scraper = new() { Timeout = TimeSpan.FromSeconds(10) };
        private readonly List<string> openFiles = [];

        /// <summary>The open-file limits the processes started with, as "name limit" for the report.</summary>
        public IReadOnlyList<string> OpenFiles => [.. StartLimits, .. openFiles];

        private IReadOnlyList<string> StartLimits { get; init; } = [];

        public string ConnectionString => connectionString;

        public IReadOnlyList<HubApi> Replicas => replicas;

        public HubBalancer? Balancer => balancer;

        /// <summary>Where agents connect: the one API, or HAProxy.</summary>
        public Uri HubUrl => balancer?.HubUrl ?? replicas[0].HubUrl;

        /// <param name="most">The most agents the hub will hold, for the file-descriptor checks.</param>
        public static async Task<Hub> StartAsync(BenchContext bench, string apiDll, int replicas, int most)
        {
            var name = replicas == 1 ? "hub" : $"hub{replicas}";
            var database = $"bench_{name}_{Guid.NewGuid():N}";
            await using (var connection = new NpgsqlConnection(bench.ConnectionString))
            {
                await connection.OpenAsync();
                await new NpgsqlCommand($"CREATE DATABASE {database}", connection).ExecuteNonQueryAsync();
            }

            var connectionString = new NpgsqlConnectionStringBuilder(bench.ConnectionString) { Database = database }.ConnectionString;
            var apis = new List<HubApi>();
            var limits = new List<string>();
            HubBalancer? balancer = null;
            try
            {
                // One after the other: the first applies the migrations.
                for (var i = 0; i < replicas; i++)
                {
                    var api = new HubApi(bench, apiDll, connectionString, replicas == 1 ? "hub-api" : $"hub-api-{(char)('a' + i)}");
                    apis.Add(api);
                    await api.StartAsync();
                    // A replica holds its share, but round robin is not exact: room for every agent on each.
                    limits.Add($"{api.Process.Name} {RequireOpenFiles(api.Process, most + 1024):N0}");
                }

                await BenchContext.Until(async () => await ReplicasRegisteredAsync(connectionString) == replicas,
                    $"{replicas} API replicas, each with its own data address, to register in api_replicas", TimeSpan.FromSeconds(30));
                if (replicas > 1)
                {
                    balancer = await HubBalancer.StartAsync(bench, apis.Select(a => a.Port).ToList(), most);
                    limits.AddRange(balancer.Processes.Select(p => $"{p.Name} {OpenFilesLimit(p.Id):N0} (maxconn {balancer.MaxConnections:N0})"));
                }

                var keys = await RegisterAsync(bench, connectionString, most, name);
                return new Hub(bench, connectionString, apis, balancer, keys) { StartLimits = limits };
            }
            catch
            {
                balancer?.Dispose();
                foreach (var api in apis)
                {
                    api.Dispose();
                }

                throw;
            }
        }

        /// <summary>Agents welcomed and still connected, over every simulated-agents process.</summary>
        public long Welcomed() => simulations.Sum(s => Status(s.Log).Welcomed);

        /// <summary>Starts one more simulated-agents process for the registered agents skip..skip+count, once it runs.</summary>
        public async Task StartAgentsAsync(int skip, int count)
        {
            var log = Path.Combine(bench.Work, $"{Path.GetFileNameWithoutExtension(keys).Replace("-agent-keys", "-agents", StringComparison.Ordinal)}-{skip}.log");
            var agentsDll = Path.Combine(AppContext.BaseDirectory, "StreamSpace.Bench.Agents.dll");
            var process = BenchProcess.Start($"agents {skip}..{skip + count}", "dotnet",
                [agentsDll, "--url", HubUrl.ToString(), "--keys", keys, "--skip", $"{skip}", "--count", $"{count}",
                 "--heartbeat", $"{HeartbeatInterval.TotalSeconds}", "--connect-rate", $"{ConnectRate}"],
                bench.Environment, log);
            simulations.Add((process, log));
            // Its first status line comes after the runtime set its limits.
            await BenchContext.Until(() => Task.FromResult(process.HasExited
                ? throw new InvalidOperationException($"{process.Name} exited with {process.ExitCode}; see {log}")
                : File.ReadLines(log).Any(l => l.StartsWith("status ", StringComparison.Ordinal))), $"{process.Name} to start", TimeSpan.FromSeconds(30));
            openFiles.Add($"simulated agents {RequireOpenFiles(process, count + 1024):N0}");
        }

        public Task UntilWelcomedAsync(int agents, TimeSpan timeout) =>
            BenchContext.Until(() => Task.FromResult(Welcomed() >= agents), $"{agents:N0} simulated agents to be welcomed through {HubUrl}", timeout);

        /// <summary>
        /// Waits until the replicas' streamspace_agents_connected gauges add up to <paramref name="agents"/>; each
        /// replica's figure.
        /// </summary>
        public async Task<long[]> UntilHeldAsync(int agents, TimeSpan timeout)
        {
            long[] held = [];
            await BenchContext.Until(async () =>
            {
                held = await Task.WhenAll(replicas.Select(r => AgentsConnectedAsync(r.Http.BaseAddress!)));
                return held.Sum() == agents;
            }, $"the replicas' streamspace_agents_connected to add up to {agents:N0} (last read: {string.Join(" + ", held)})", timeout);
            return held;
        }

        /// <summary>The streamspace_agents_connected gauge on one replica's /metrics (summed over its series).</summary>
        private async Task<long> AgentsConnectedAsync(Uri replica)
        {
            const string gauge = "streamspace_agents_connected";
            var text = await scraper.GetStringAsync(new Uri(replica, "/metrics"));
            return text.Split('\n')
                .Where(l => l.StartsWith(gauge, StringComparison.Ordinal) && l.Length > gauge.Length && l[gauge.Length] is ' ' or '{')
                .Sum(l => (long)double.Parse(l[(l.LastIndexOf('}') is var brace and >= 0 ? brace + 1 : gauge.Length)..].Trim().Split(' ')[0], CultureInfo.InvariantCulture));
        }

        private static async Task<long> ReplicasRegisteredAsync(string connectionString)
        {
            await using var connection = new NpgsqlConnection(connectionString);
            await connection.OpenAsync();
            return (long)(await new NpgsqlCommand("SELECT count(DISTINCT data_url) FROM api_replicas WHERE data_url IS NOT NULL", connection).ExecuteScalarAsync())!;
        }

        public ValueTask DisposeAsync()
        {
            foreach (var (process, _) in simulations)
            {
                process.Dispose();
            }

            balancer?.Dispose();
            foreach (var api in replicas)
            {
                api.Dispose();
            }

            scraper.Dispose();
            return ValueTask.CompletedTask;
        }
    }

    /// <summary>
    /// Debian's HAProxy in front of the replicas, in the shape the replica tests use (round robin, no stickiness,
    /// health checks on /health), sized for the hub. Each agent costs HAProxy two descriptors (in and out), so 10,000
    /// agents need just over 20,000, and an unprivileged container cannot raise the hard limit (20,000 here; HAProxy
    /// refused to start asking for more). So the balancer is as many HAProxy processes as that limit calls for, each
    /// with the same configuration and maxconn fitted to the limit, bound to one port with SO_REUSEPORT (HAProxy's
    /// default on Linux; the kernel spreads new connections over them), as a load balancer is scaled out. Each also
    /// listens on a port of its own, so the bench knows every one of them serves. Checks get 2 s and three misses, not
    /// the tests' 500 ms and two: a replica taking thousands of hellos on 2 busy cores answered /health in over
    /// 500 ms, was marked down, and the balancer then sent every newcomer to the other one.
    /// </summary>
    private sealed class HubBalancer(IReadOnlyList<BenchProcess> processes, int port, int maxConnections) : IDisposable
    {
        public IReadOnlyList<BenchProcess> Processes => processes;

        public Uri HubUrl => new($"ws://127.0.0.1:{port}/agent/ws");

        /// <summary>Frontend connections each HAProxy process accepts (its maxconn).</summary>
        public int MaxConnections => maxConnections;

        public double CpuSeconds => processes.Sum(p => p.CpuSeconds);

        public static async Task<HubBalancer> StartAsync(BenchContext bench, IReadOnlyList<int> serverPorts, int agents)
        {
            const string haproxy = "/usr/sbin/haproxy";
            if (!File.Exists(haproxy))
            {
                throw new InvalidOperationException("HAProxy is not installed: apt-get install -y haproxy");
            }

            // Room for listeners, checks, logs and the poller beside the two descriptors of each connection.
            const int spare = 512;
            var hardLimit = HardOpenFilesLimit();
            var maxConnections = (int)Math.Min(2L * agents, (hardLimit - spare) / 2);
            // One process when it holds every agent; else more, with half again the even share each, for the kernel's
            // uneven spread of connections over them.
            var count = agents <= maxConnections ? 1 : (int)Math.Ceiling(1.5 * agents / maxConnections);

            var port = BenchContext.FreePort();
            var processes = new List<BenchProcess>();
            var balancer = new HubBalancer(processes, port, maxConnections);
            try
            {
                for (var i = 0; i < count; i++)
                {
                    var ownPort = BenchContext.FreePort();
                    var config = Path.Combine(bench.Work, $"hub-haproxy-{i}.cfg");
                    await File.WriteAllTextAsync(config, HaproxyConfig.Render([port, ownPort], serverPorts, maxConnections, checkInterval: "1s", downAfter: 3, checkTimeout: "2s"));
                    var log = Path.Combine(bench.Work, $"hub-haproxy-{i}.log");
                    var process = BenchProcess.Start($"haproxy {i}", haproxy, ["-db", "-f", config], bench.Environment, log);
                    processes.Add(process);
                    using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{ownPort}"), Timeout = TimeSpan.FromSeconds(2) };
                    await BenchContext.Until(async () => process.HasExited
                        ? throw new InvalidOperationException($"{process.Name} exited with {process.ExitCode}; see {log}")
                        : (await BenchContext.Try(() => client.GetAsync("/health")))?.IsSuccessStatusCode == true, $"{process.Name} to serve /health", TimeSpan.FromSeconds(20));
                    RequireOpenFiles(process, 2L * maxConnections);
                }

                return balancer;
            }
            catch
            {
                balancer.Dispose();
                throw;
            }
        }

        /// <summary>The hard open-file limit this process (and so every process it starts) may raise its own to.</summary>
        private static long HardOpenFilesLimit()
        {
            var line = File.ReadLines("/proc/self/limits").First(l => l.StartsWith("Max open files", StringComparison.Ordinal));
            var hard = line["Max open files".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries)[1];
            return hard == "unlimited" ? 1 << 20 : long.Parse(hard, CultureInfo.InvariantCulture);
        }

        public void Dispose()
        {
            foreach (var process in processes)
            {
                process.Dispose();
            }
        }
    }

    /// <summary>One API process of a hub, which the restart kills and starts again on the same port and database.</summary>
    private sealed class HubApi(BenchContext bench, string dll, string connectionString, string name) : IDisposable
    {
        private const string AdminPassword = "bench-hub-admin-password";
        private int starts;
        private bool running;

        public int Port { get; } = BenchContext.FreePort();

        public BenchProcess Process { get; private set; } = null!;

        public string LogFile { get; private set; } = "";

        public HttpClient Http { get; } = new();

        public Uri HubUrl => new($"ws://127.0.0.1:{Port}/agent/ws");

        public async Task StartAsync()
        {
            Start();
            await WaitUntilHealthyAsync();
        }

        public Task WaitUntilHealthyAsync() =>
            BenchContext.Until(async () => Process.HasExited
                ? throw new InvalidOperationException($"{name} exited with {Process.ExitCode}; see {LogFile}")
                : (await BenchContext.Try(() => Http.GetAsync("/health")))?.IsSuccessStatusCode == true, $"{name} to answer /health as healthy", TimeSpan.FromMinutes(5));

        public void Start()
        {
            Http.BaseAddress ??= new Uri($"http://127.0.0.1:{Port}");
            Process = BenchProcess.Start(name, "dotnet", [dll], new Dictionary<string, string>(bench.Environment)
            {
                ["ConnectionStrings__streamspace"] = connectionString,
                ["JWT_SECRET"] = "bench-hub-secret-that-is-long-enough-for-hmac-sha256",
                ["ADMIN_PASSWORD"] = AdminPassword,
                ["ASPNETCORE_URLS"] = $"http://127.0.0.1:{Port}",
                // Tunnel v2's data listener on a free port of its own, reached at the loopback address.
                ["DATA_PORT"] = "0",
                ["REPLICA_ADDRESS"] = "127.0.0.1",
                ["Logging__LogLevel__Default"] = "Warning",
            }, LogFile = Path.Combine(bench.Work, $"{name}-{++starts}.log"));
            running = true;
        }

        public void Kill()
        {
            Process.Dispose();
            running = false;
        }

        public void Dispose()
        {
            if (running)
            {
                Process.Dispose();
            }

            Http.Dispose();
        }
    }
}
