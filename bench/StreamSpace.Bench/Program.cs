using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Npgsql;
using StreamSpace.Bench;

// ./streamspace bench: runs the system under test as real processes on loopback and measures side by side.
// Benchmarks assert nothing; they print a table and write docs/benchmarks.md.
var root = FindRoot();
var quick = args.Contains("--quick");
var postgres = Environment.GetEnvironmentVariable("STREAMSPACE_BENCH_POSTGRES") ?? throw new InvalidOperationException("Run through ./streamspace bench.");
var repetitions = quick ? 1 : 3;
var work = Directory.CreateTempSubdirectory("streamspace-bench-").FullName;
var culture = CultureInfo.InvariantCulture;
var report = new StringBuilder();
var medians = new Dictionary<string, double>();
void Line(string text) { Console.WriteLine(text); report.AppendLine(text); }

var database = $"bench_{Guid.NewGuid():N}";
await using (var admin = new NpgsqlConnection(postgres))
{
    await admin.OpenAsync();
    await new NpgsqlCommand($"CREATE DATABASE {database}", admin).ExecuteNonQueryAsync();
}

var connectionString = new NpgsqlConnectionStringBuilder(postgres) { Database = database, MaxPoolSize = 200 }.ConnectionString;
var apiPort = FreePort();
var api = new Uri($"http://127.0.0.1:{apiPort}");
const string adminPassword = "bench-admin-password";
const string agentKey = "bench-agent-key-0123456789abcdefghijklmnopqrstuvwxyz";
var common = new Dictionary<string, string> { ["PATH"] = Environment.GetEnvironmentVariable("PATH")!, ["HOME"] = Environment.GetEnvironmentVariable("HOME")!, ["DOTNET_gcServer"] = "0" };
using var apiProcess = BenchProcess.Start("api", "dotnet", [Built("StreamSpace.Api")], new Dictionary<string, string>(common)
{
    ["ConnectionStrings__streamspace"] = connectionString,
    ["JWT_SECRET"] = "bench-secret-that-is-long-enough-for-hmac-sha256-signing",
    ["ADMIN_PASSWORD"] = adminPassword,
    ["PROVISIONED_AGENT_ID"] = "bench-agent",
    ["PROVISIONED_AGENT_KEY"] = agentKey,
    ["SESSION_QUOTA"] = "100",
    ["LOGIN_ATTEMPTS_PER_MINUTE"] = "1000",
    ["ASPNETCORE_URLS"] = api.ToString(),
    ["Logging__LogLevel__Default"] = "Warning",
}, Path.Combine(work, "api.log"));
using var http = new HttpClient { BaseAddress = api };
await Until(async () => (await Try(() => http.GetAsync("/health")))?.IsSuccessStatusCode == true, "the API");

var agentData = Path.Combine(work, "agent");
using var agentProcess = BenchProcess.Start("agent", "dotnet", [Built("StreamSpace.Agent")], new Dictionary<string, string>(common)
{
    ["CONTROL_PLANE_URL"] = new UriBuilder(api) { Scheme = "ws", Path = "/agent/ws" }.ToString(),
    ["AGENT_ID"] = "bench-agent",
    ["AGENT_KEY"] = agentKey,
    ["PLATFORM"] = "local",
    ["MAX_SESSIONS"] = "100",
    ["AGENT_DATA_DIR"] = agentData,
    ["Logging__LogLevel__Default"] = "Warning",
}, Path.Combine(work, "agent.log"));

var login = await (await http.PostAsJsonAsync("/api/v1/auth/login", new { username = "admin", password = adminPassword })).Content.ReadFromJsonAsync<JsonElement>();
var token = login.GetProperty("token").GetString()!;
http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
await Until(async () => (await http.GetStringAsync("/api/v1/agents/bench-agent")).Contains("\"status\":\"online\""), "the agent");

Line($"# StreamSpace benchmarks");
Line("");
Line($"- Date: {DateTimeOffset.UtcNow:yyyy-MM-dd HH:mm} UTC; commit {Git("rev-parse --short HEAD")}");
Line($"- Machine: {Environment.ProcessorCount} cores ({CpuModel()}), {MemoryGiB():0} GiB, {Environment.OSVersion}, .NET {Environment.Version}");
Line($"- Repetitions: {repetitions}; figures are medians with [min–max]. MB = 10^6 bytes. All traffic on loopback.");
Line("");

// 1. Tunnel, against one real Xvnc session: full-screen Raw updates (4 MB each) for throughput, 1×1 updates for round trips.
var session = await LaunchAsync();
var vncPort = session.GetProperty("platform_metadata").GetProperty("vnc_port").GetInt32();
var sessionId = session.GetProperty("id").GetString()!;
var password = await File.ReadAllTextAsync(Path.Combine(agentData, "sessions", sessionId, "password"));
var websockifyPort = FreePort();
using var websockify = BenchProcess.Start("websockify", "websockify", [$"127.0.0.1:{websockifyPort}", $"127.0.0.1:{vncPort}"], common, Path.Combine(work, "websockify.log"));
await Until(async () => { try { using var c = new TcpClient(); await c.ConnectAsync("127.0.0.1", websockifyPort); return true; } catch (SocketException) { return false; } }, "websockify");

var updates = quick ? 5 : 40;
var roundTrips = quick ? 500 : 10_000;
var paths = new (string Name, Func<Task<RfbClient>> Connect, BenchProcess[] Processes)[]
{
    ("(a) direct TCP to Xvnc", () => RfbClient.DirectAsync(vncPort, password), []),
    ("(b) WebSocket → websockify → Xvnc", () => RfbClient.WebSocketAsync(new Uri($"ws://127.0.0.1:{websockifyPort}/"), password), [websockify]),
    ("(c) WebSocket → API /vnc → agent → Xvnc", async () => RfbClient.WebSocketAsync(await VncUrlAsync(sessionId), null).Result, [apiProcess, agentProcess]),
};

Line("## 1. Tunnel (real Xvnc 1280×800, Raw encoding)");
Line("");
Line("| Path | Throughput MB/s | 1×1 update round trip p50 / p99 µs | CPU s per GiB (relay processes) |");
Line("|---|---|---|---|");
foreach (var (name, connect, processes) in paths)
{
    var throughput = new List<double>();
    var p50 = new List<double>();
    var p99 = new List<double>();
    var cpu = new List<double>();
    for (var rep = 0; rep < repetitions; rep++)
    {
        await using var client = await connect();
        await client.FullScreenAsync();
        var cpuBefore = processes.Sum(p => p.CpuSeconds);
        var clock = Stopwatch.StartNew();
        long bytes = 0;
        for (var i = 0; i < updates; i++)
        {
            bytes += await client.FullScreenAsync();
        }

        var seconds = clock.Elapsed.TotalSeconds;
        throughput.Add(bytes / seconds / 1e6);
        if (processes.Length > 0)
        {
            cpu.Add((processes.Sum(p => p.CpuSeconds) - cpuBefore) / (bytes / (1024.0 * 1024 * 1024)));
        }

        var samples = new double[roundTrips];
        for (var i = 0; i < roundTrips; i++)
        {
            var start = Stopwatch.GetTimestamp();
            await client.UpdateAsync(1, 1);
            samples[i] = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
        }

        Array.Sort(samples);
        p50.Add(samples[samples.Length / 2]);
        p99.Add(samples[(int)(samples.Length * 0.99)]);
    }

    var key = name[..3];
    medians[$"{key} MB/s"] = Median(throughput);
    medians[$"{key} p50"] = Median(p50);
    medians[$"{key} p99"] = Median(p99);
    if (cpu.Count > 0)
    {
        medians[$"{key} cpu"] = Median(cpu);
    }

    Line($"| {name} | {Figure(throughput, "0")} | {Figure(p50, "0")} / {Figure(p99, "0")} | {(cpu.Count == 0 ? "—" : Figure(cpu, "0.00"))} |");
}

Line("");
Line($"Throughput: {updates} full-screen updates per repetition; round trips: {roundTrips:N0} per repetition. CPU counts the relay processes only (websockify for b, API and agent for c), not Xvnc or the client.");
Line("");

// 3. Session start on the local platform.
Line("## 3. Session start (local platform: Xvnc + openbox + xterm)");
Line("");
Line("| Launches | POST → running p50 / p95 ms | POST → first framebuffer update through /vnc p50 / p95 ms |");
Line("|---|---|---|");
foreach (var (label, count, parallel) in new[] { ("20 sequential", quick ? 3 : 20, 1), ("10 concurrent", quick ? 3 : 10, quick ? 3 : 10) })
{
    var running = new List<double>();
    var firstFrame = new List<double>();
    for (var batch = 0; batch < count; batch += parallel)
    {
        var results = await Task.WhenAll(Enumerable.Range(0, Math.Min(parallel, count - batch)).Select(async _ =>
        {
            var clock = Stopwatch.StartNew();
            var launched = await LaunchAsync();
            var toRunning = clock.Elapsed.TotalMilliseconds;
            await using (var viewer = await RfbClient.WebSocketAsync(await VncUrlAsync(launched.GetProperty("id").GetString()!), null))
            {
                await viewer.UpdateAsync(1, 1);
            }

            var toFrame = clock.Elapsed.TotalMilliseconds;
            await http.DeleteAsync($"/api/v1/sessions/{launched.GetProperty("id").GetString()}");
            return (toRunning, toFrame);
        }));
        running.AddRange(results.Select(r => r.toRunning));
        firstFrame.AddRange(results.Select(r => r.toFrame));
    }

    medians[$"{label} p50"] = Percentile(running, 50);
    medians[$"{label} p95"] = Percentile(running, 95);
    Line($"| {label} | {Percentile(running, 50):0} / {Percentile(running, 95):0} | {Percentile(firstFrame, 50):0} / {Percentile(firstFrame, 95):0} |");
}

Line("");

// 4. API throughput with wrk: GET /api/v1/sessions with 100 sessions stored, and /alive as the same server's ceiling.
await using (var connection = new NpgsqlConnection(connectionString))
{
    await connection.OpenAsync();
    await new NpgsqlCommand(
        "INSERT INTO sessions (id, user_id, template, state, agent_id, platform) " +
        "SELECT 'bench-' || g, (SELECT id FROM users WHERE username = 'admin'), 'xterm', 'stopped', 'bench-agent', 'local' FROM generate_series(1, 100) g",
        connection).ExecuteNonQueryAsync();
}

Line("## 4. API (wrk, 2 threads, 50 connections, " + (quick ? "3" : "10") + " s)");
Line("");
Line("| Endpoint | Requests/s | Latency p50 / p99 ms |");
Line("|---|---|---|");
foreach (var (label, path, authorize) in new[] { ("GET /api/v1/sessions (100 stored)", "/api/v1/sessions", true), ("GET /alive (ceiling)", "/alive", false) })
{
    var rates = new List<double>();
    var p50s = new List<double>();
    var p99s = new List<double>();
    for (var rep = 0; rep < repetitions; rep++)
    {
        var (rate, p50, p99) = Wrk(new Uri(api, path), authorize ? token : null, quick ? 3 : 10);
        rates.Add(rate);
        p50s.Add(p50);
        p99s.Add(p99);
    }

    medians[$"{label} rate"] = Median(rates);
    medians[$"{label} p99"] = Median(p99s);
    Line($"| {label} | {Figure(rates, "0")} | {Figure(p50s, "0.0")} / {Figure(p99s, "0.0")} |");
}

Line("");
Line("## Against the targets");
Line("");
Line("| Target | Measured | Met |");
Line("|---|---|---|");
Target("(c) throughput ≥ websockify's", $"{medians["(c) MB/s"]:0} vs {medians["(b) MB/s"]:0} MB/s", medians["(c) MB/s"] >= medians["(b) MB/s"]);
Target("(c) CPU per GiB ≤ 2 × websockify's", $"{medians["(c) cpu"]:0.00} vs {medians["(b) cpu"]:0.00} s", medians["(c) cpu"] <= 2 * medians["(b) cpu"]);
Target("(c) round trip p99 ≤ websockify's, p50 < 300 µs", $"p99 {medians["(c) p99"]:0} vs {medians["(b) p99"]:0} µs, p50 {medians["(c) p50"]:0} µs",
    medians["(c) p99"] <= medians["(b) p99"] && medians["(c) p50"] < 300);
Target("session start p50 < 1 s, p95 < 2 s (sequential)", $"{medians["20 sequential p50"]:0} / {medians["20 sequential p95"]:0} ms",
    medians["20 sequential p50"] < 1000 && medians["20 sequential p95"] < 2000);
Target("session start p50 < 1 s, p95 < 2 s (10 concurrent)", $"{medians["10 concurrent p50"]:0} / {medians["10 concurrent p95"]:0} ms",
    medians["10 concurrent p50"] < 1000 && medians["10 concurrent p95"] < 2000);
Target("GET /api/v1/sessions ≥ 5,000 req/s, p99 < 20 ms", $"{medians["GET /api/v1/sessions (100 stored) rate"]:0} req/s, p99 {medians["GET /api/v1/sessions (100 stored) p99"]:0.0} ms",
    medians["GET /api/v1/sessions (100 stored) rate"] >= 5000 && medians["GET /api/v1/sessions (100 stored) p99"] < 20);
Line("");
Line($"API resident memory after the run: {apiProcess.MemoryMiB:0} MiB; agent: {agentProcess.MemoryMiB:0} MiB.");
Line("");
Line("Not measured yet: path (c) with 50 paced streams (section 1's concurrency), synthetic echo servers for 64-byte input round trips (the 1×1 update round trip stands in for them), and the agent hub at 1,000–10,000 simulated agents (section 5).");

await http.DeleteAsync($"/api/v1/sessions/{sessionId}");
if (!quick)
{
    await File.WriteAllTextAsync(Path.Combine(root, "docs", "benchmarks.md"), report.ToString());
    Console.WriteLine($"\nWrote docs/benchmarks.md");
}

return 0;

async Task<JsonElement> LaunchAsync()
{
    var created = await (await http.PostAsJsonAsync("/api/v1/sessions", new { template = "xterm" })).Content.ReadFromJsonAsync<JsonElement>();
    var id = created.GetProperty("id").GetString()!;
    while (true)
    {
        var current = await http.GetFromJsonAsync<JsonElement>($"/api/v1/sessions/{id}");
        switch (current.GetProperty("state").GetString())
        {
            case "running": return current;
            case "failed": throw new InvalidOperationException($"session {id} failed: {current.GetProperty("failure_reason")}");
        }

        await Task.Delay(10);
    }
}

async Task<Uri> VncUrlAsync(string id)
{
    var ticket = await (await http.PostAsync($"/api/v1/sessions/{id}/connect", null)).Content.ReadFromJsonAsync<JsonElement>();
    return new Uri(new UriBuilder(api) { Scheme = "ws" }.Uri, ticket.GetProperty("url").GetString());
}

(double Rate, double P50, double P99) Wrk(Uri url, string? bearer, int seconds)
{
    var arguments = new List<string> { "-t2", "-c50", $"-d{seconds}s", "--latency" };
    if (bearer is not null)
    {
        arguments.AddRange(["-H", $"Authorization: Bearer {bearer}"]);
    }

    arguments.Add(url.ToString());
    using var wrk = Process.Start(new ProcessStartInfo("wrk", arguments) { RedirectStandardOutput = true })!;
    var output = wrk.StandardOutput.ReadToEnd();
    wrk.WaitForExit();
    double Value(string prefix) => Milliseconds(output.Split('\n').First(l => l.TrimStart().StartsWith(prefix, StringComparison.Ordinal)).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]);
    var rate = double.Parse(output.Split('\n').First(l => l.StartsWith("Requests/sec", StringComparison.Ordinal)).Split(':')[1].Trim(), culture);
    return (rate, Value("50%"), Value("99%"));
}

double Milliseconds(string wrkTime) => wrkTime.EndsWith("us", StringComparison.Ordinal) ? double.Parse(wrkTime[..^2], culture) / 1000
    : wrkTime.EndsWith("ms", StringComparison.Ordinal) ? double.Parse(wrkTime[..^2], culture)
    : double.Parse(wrkTime[..^1], culture) * 1000;

void Target(string target, string measured, bool met) => Line($"| {target} | {measured} | {(met ? "yes" : "no")} |");

static double Median(List<double> values) => values.Order().ElementAt(values.Count / 2);

static string Figure(List<double> values, string format)
{
    var sorted = values.Order().ToList();
    return sorted.Count == 1
        ? sorted[0].ToString(format, CultureInfo.InvariantCulture)
        : $"{sorted[sorted.Count / 2].ToString(format, CultureInfo.InvariantCulture)} [{sorted[0].ToString(format, CultureInfo.InvariantCulture)}–{sorted[^1].ToString(format, CultureInfo.InvariantCulture)}]";
}

static double Percentile(List<double> values, int percentile)
{
    var sorted = values.Order().ToList();
    return sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(percentile / 100.0 * sorted.Count) - 1)];
}

static async Task Until(Func<Task<bool>> condition, string what)
{
    for (var i = 0; i < 600; i++)
    {
        if (await condition())
        {
            return;
        }

        await Task.Delay(100);
    }

    throw new TimeoutException($"{what} did not come up within 60 s");
}

static async Task<T?> Try<T>(Func<Task<T>> action) where T : class
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

static int FreePort()
{
    using var listener = new TcpListener(System.Net.IPAddress.Loopback, 0);
    listener.Start();
    return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
}

string Built(string project) => Path.Combine(root, project, "bin", "Release", "net10.0", project + ".dll");

string Git(string arguments)
{
    using var git = Process.Start(new ProcessStartInfo("git", arguments) { RedirectStandardOutput = true, WorkingDirectory = root })!;
    return git.StandardOutput.ReadToEnd().Trim();
}

static string CpuModel() => File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':')[1].Trim() ?? "unknown CPU";

static double MemoryGiB() => double.Parse(File.ReadLines("/proc/meminfo").First().Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024 / 1024;

static string FindRoot()
{
    for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
    {
        if (File.Exists(Path.Combine(dir.FullName, "StreamSpace.sln")))
        {
            return dir.FullName;
        }
    }

    throw new InvalidOperationException("Run the benchmarks inside the StreamSpace repository.");
}
