using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using Npgsql;
using static StreamSpace.Bench.Figures;

namespace StreamSpace.Bench;

/// <summary>
/// Section 5: 1,000, 5,000 and 10,000 simulated agents (bench/StreamSpace.Bench.Agents, a separate process) on an API
/// of its own, so its restart disturbs no other section. Agents are registered with hashed keys in the database; each
/// heartbeats every 30 s (the default), its first at a random point of the interval. Heartbeat handling time is the
/// API's own histogram (streamspace.agent_hub.heartbeat.duration: parsed frame → committed write), read with
/// dotnet-counters over each steady window, since the protocol has no heartbeat answer a client could time.
/// </summary>
public static class HubBench
{
    private const string CountersVersion = "10.0.750501";
    private const string Meter = "StreamSpace.Api.AgentHub";
    private static readonly TimeSpan HeartbeatInterval = TimeSpan.FromSeconds(30);

    public static async Task RunAsync(BenchContext bench, Func<string, string> built)
    {
        var levels = bench.Quick ? new[] { 1000 } : [1000, 5000, 10_000];
        // A window of one heartbeat interval: every agent heartbeats once in it.
        var window = bench.Quick ? TimeSpan.FromSeconds(10) : HeartbeatInterval;
        var counters = await DotnetCountersAsync(bench);

        var database = $"bench_hub_{Guid.NewGuid():N}";
        await using (var connection = new NpgsqlConnection(bench.ConnectionString))
        {
            await connection.OpenAsync();
            await new NpgsqlCommand($"CREATE DATABASE {database}", connection).ExecuteNonQueryAsync();
        }

        var api = new HubApi(bench, built("StreamSpace.Api"), new NpgsqlConnectionStringBuilder(bench.ConnectionString) { Database = database }.ConnectionString);
        await api.StartAsync();
        var keys = await RegisterAsync(bench, api.ConnectionString, levels[^1]);
        var agentsDll = Path.Combine(AppContext.BaseDirectory, "StreamSpace.Bench.Agents.dll");
        var simulations = new List<(BenchProcess Process, string Log)>();
        long Welcomed() => simulations.Sum(s => Status(s.Log).Welcomed);

        bench.Line($"## 7. Agent hub (simulated agents, heartbeat every {HeartbeatInterval.TotalSeconds:0} s, {window.TotalSeconds:0}-s steady window)");
        bench.Line("");
        bench.Line("| Agents connected | API CPU % of a core | API RSS MiB | Agents whose heartbeat the API recorded in the window | Heartbeats recorded/s | Heartbeat handling p50 / p99 ms |");
        bench.Line("|---|---|---|---|---|---|");
        // The figures of the largest level (10,000 agents in a full run), which the targets judge.
        double largestP99 = double.NaN;
        long largestRecorded = 0;
        try
        {
            var connected = 0;
            foreach (var level in levels)
            {
                var log = Path.Combine(bench.Work, $"hub-agents-{connected}.log");
                simulations.Add((BenchProcess.Start($"agents {connected}..{level}", "dotnet",
                    [agentsDll, "--url", api.HubUrl.ToString(), "--keys", keys, "--skip", $"{connected}", "--count", $"{level - connected}",
                     "--heartbeat", $"{HeartbeatInterval.TotalSeconds}", "--connect-rate", "1000"],
                    bench.Environment, log), log));
                connected = level;
                await BenchContext.Until(() => Task.FromResult(Welcomed() >= level), $"{level} simulated agents", TimeSpan.FromMinutes(3));
                // The first heartbeats of the newcomers are spread over one interval from their welcome.
                await Task.Delay(TimeSpan.FromSeconds(bench.Quick ? 2 : 5));

                var cpuBefore = api.Process.CpuSeconds;
                var windowStart = await DatabaseNowAsync(api.ConnectionString);
                var clock = Stopwatch.StartNew();
                var histogram = await CollectAsync(counters, api.Process.Id, window);
                var seconds = clock.Elapsed.TotalSeconds;
                var cpu = (api.Process.CpuSeconds - cpuBefore) / seconds * 100;
                var recorded = await HeartbeatsRecordedSinceAsync(api.ConnectionString, windowStart);
                var rate = recorded / seconds;
                var p50 = histogram.GetValueOrDefault(("heartbeat", 50), double.NaN);
                var p99 = histogram.GetValueOrDefault(("heartbeat", 99), double.NaN);
                (largestP99, largestRecorded) = (p99, recorded);

                bench.Line($"| {level:N0} ({Welcomed():N0} welcomed) | {cpu:0} | {api.Process.MemoryMiB:0} | {recorded:N0} of {level:N0} | {rate:0} | {p50:0.0} / {p99:0.0} |");
            }

            bench.Line("");
            bench.Line($"Heartbeats are counted where the API records them: the agents whose `last_heartbeat` the API committed during the window " +
                $"(read from PostgreSQL, on the database's clock). The window lasts {window.TotalSeconds:0} s of the {HeartbeatInterval.TotalSeconds:0}-s interval, " +
                $"so about {window / HeartbeatInterval:P0} of the agents heartbeat in it; in a full run that is every agent, and a count below the agents " +
                "connected means heartbeats the API did not handle in time.");
            bench.Line("");
            var total = levels[^1];
            var fromStart = new List<double>();
            var fromReady = new List<double>();
            var helloP99 = new List<double>();
            for (var rep = 0; rep < bench.Repetitions; rep++)
            {
                await BenchContext.Until(() => Task.FromResult(Welcomed() >= total), $"{total} simulated agents", TimeSpan.FromMinutes(3));
                api.Kill();
                await BenchContext.Until(() => Task.FromResult(Welcomed() == 0), "every simulated agent to notice the API is gone", TimeSpan.FromMinutes(1));
                var clock = Stopwatch.StartNew();
                api.Start();
                // dotnet-counters attaches as the runtime starts, before the first hello.
                var histogram = CollectAsync(counters, api.Process.Id, TimeSpan.FromSeconds(60));
                var healthy = api.WaitUntilHealthyAsync().ContinueWith(_ => clock.Elapsed.TotalSeconds, TaskScheduler.Default);
                await BenchContext.Until(() => Task.FromResult(api.Process.HasExited
                    ? throw new InvalidOperationException($"the restarted API exited with {api.Process.ExitCode}; see {api.LogFile}")
                    : Welcomed() >= total), $"{total} simulated agents to reconnect (log: {api.LogFile})", TimeSpan.FromMinutes(5));
                fromStart.Add(clock.Elapsed.TotalSeconds);
                fromReady.Add(await healthy);
                helloP99.Add((await histogram).GetValueOrDefault(("hello", 99), double.NaN));
            }

            bench.Line($"Reconnect after an API restart (SIGKILL, then started again) with {total:N0} agents (real agent backoff: full jitter, 1 s doubling to 30 s): " +
                $"all welcomed again {Figure(fromStart, "0.0")} s after the new API process started; /health first answered healthy after {Figure(fromReady, "0.0")} s; " +
                $"hello handling p99 over the first minute {Figure(helloP99, "0")} ms.");
            bench.Line("");
        }
        finally
        {
            foreach (var (process, _) in simulations)
            {
                process.Dispose();
            }

            api.Dispose();
        }

        if (window >= HeartbeatInterval)
        {
            bench.Target($"agent hub: {levels[^1]:N0} agents, every heartbeat recorded by the API within its interval",
                $"{largestRecorded:N0} of {levels[^1]:N0}", largestRecorded == levels[^1]);
        }

        bench.Target($"agent hub: {levels[^1]:N0} agents connected, heartbeat p99 < 50 ms", $"p99 {largestP99:0.0} ms", largestP99 < 50);
    }

    /// <summary>
    /// Registers agents straight in the database, in one statement: through POST /api/v1/agents, 10,000 take minutes
    /// on a busy 2-core box. The row is what the endpoint writes: the key's SHA-256 in hex (AgentKeys.Hash), here
    /// computed by PostgreSQL. Returns a file of "id key" lines.
    /// </summary>
    private static async Task<string> RegisterAsync(BenchContext bench, string connectionString, int count)
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

        var file = Path.Combine(bench.Work, "hub-agent-keys.txt");
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

    /// <summary>The section's own API process, which it kills and starts again on the same port and database.</summary>
    private sealed class HubApi(BenchContext bench, string dll, string connectionString) : IDisposable
    {
        public string ConnectionString => connectionString;

        private const string AdminPassword = "bench-hub-admin-password";
        private readonly int port = BenchContext.FreePort();
        private int starts;

        public BenchProcess Process { get; private set; } = null!;

        public string LogFile { get; private set; } = "";

        public HttpClient Http { get; } = new();

        public Uri HubUrl => new($"ws://127.0.0.1:{port}/agent/ws");

        public async Task StartAsync()
        {
            Start();
            await WaitUntilHealthyAsync();
        }

        public Task WaitUntilHealthyAsync() =>
            BenchContext.Until(async () => (await BenchContext.Try(() => Http.GetAsync("/health")))?.IsSuccessStatusCode == true, "the hub's API", TimeSpan.FromMinutes(5));

        public void Start()
        {
            Http.BaseAddress ??= new Uri($"http://127.0.0.1:{port}");
            Process = BenchProcess.Start("hub api", "dotnet", [dll], new Dictionary<string, string>(bench.Environment)
            {
                ["ConnectionStrings__streamspace"] = connectionString,
                ["JWT_SECRET"] = "bench-hub-secret-that-is-long-enough-for-hmac-sha256",
                ["ADMIN_PASSWORD"] = AdminPassword,
                ["ASPNETCORE_URLS"] = $"http://127.0.0.1:{port}",
                // Tunnel v2's data listener on a free port, as for the main API (ignored by an API before it).
                ["DATA_PORT"] = "0",
                ["REPLICA_ADDRESS"] = "127.0.0.1",
                ["Logging__LogLevel__Default"] = "Warning",
            }, LogFile = Path.Combine(bench.Work, $"hub-api-{++starts}.log"));
            running = true;
        }

        private bool running;

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
