using System.Diagnostics;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Npgsql;
using StreamSpace.Bench;

// ./streamspace bench [--quick] [--only SECTION[,SECTION…]]: runs the system under test as real processes on loopback
// and measures each figure beside its anchor (raw TCP, websockify, a bare Xvnc, the server's /alive) in the same run.
// Each section lives in its own file; this file starts the API and the agent, runs the sections in order, each under
// a time limit, and writes docs/benchmarks.md after a full run. Benchmarks assert nothing: a section fails only when
// something it waits for does not happen in time, and the report says so.
if (args is ["--synthetic-vnc", .. var syntheticArguments])
{
    // The tunnel section's stand-in VNC server, run by the fake Xvnc a bench template puts on a session's PATH.
    return await SyntheticVncServer.RunAsync(syntheticArguments);
}

if (args is ["--paced-client", var specification])
{
    // One of the processes that receive the 50 paced streams.
    return await PacedClient.RunAsync(specification);
}

if (args is ["--record-session", .. var recorderArguments])
{
    // The recording section's recorder, in a process of its own so its CPU is the recorder's alone.
    return await RecordingBench.RunRecorderAsync(recorderArguments);
}

if (args is ["--fake-cluster", .. var clusterArguments])
{
    // The Kubernetes tunnel rows' fake API server and kubelet.
    return await FakeCluster.RunAsync(clusterArguments);
}

var sections = new Section[]
{
    new("tunnel", "paths (a) raw TCP, (b) websockify, (c) API /vnc → agent and its variants; 50 paced viewers", TimeSpan.FromMinutes(8), TunnelBench.RunAsync),
    new("tunnel-paced", "only the tunnel section's 50 paced viewers, through (b) websockify and (c)", TimeSpan.FromMinutes(4), TunnelBench.PacedOnlyAsync, OnlyWhenNamed: true),
    new("real-session", "a real Xvnc whose screen changes colour, direct and through (c)", TimeSpan.FromMinutes(3), RealSessionBench.RunAsync),
    new("recording", "the agent's recorder on one busy real session: its CPU and the session's, with and without, and bytes written", TimeSpan.FromMinutes(3), RecordingBench.RunAsync),
    new("session-start", "sequential local launches", TimeSpan.FromMinutes(3), SessionStartBench.SequentialAsync),
    new("concurrent-starts", "10 local launches at once, beside 10 bare Xvnc at once", TimeSpan.FromMinutes(4), SessionStartBench.ConcurrentAsync),
    new("density", "idle local sessions in steps up to 50: memory per session, the 50th launch", TimeSpan.FromMinutes(6), DensityBench.RunAsync),
    new("api", "GET /api/v1/sessions under wrk, cached and for 100 users, beside /alive", TimeSpan.FromMinutes(4), ApiBench.RunAsync),
    new("hub", "1,000 to 10,000 simulated agents on one API, then on two behind HAProxy; heartbeats where recorded; restart", TimeSpan.FromMinutes(16), bench => HubBench.RunAsync(bench, BenchPaths.Built)),
};

if (args.Contains("--help") || args.Contains("-h"))
{
    Console.WriteLine(Usage(sections));
    return 0;
}

var quick = false;
string[]? only = null;
for (var i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--quick":
            quick = true;
            break;
        case "--only" when i + 1 < args.Length:
            only = args[++i].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            break;
        default:
            Console.Error.WriteLine($"unknown argument '{args[i]}'\n\n{Usage(sections)}");
            return 2;
    }
}

if (only?.FirstOrDefault(name => sections.All(s => s.Name != name)) is { } unknown)
{
    Console.Error.WriteLine($"--only: no section is named '{unknown}'\n\n{Usage(sections)}");
    return 2;
}

var postgres = Environment.GetEnvironmentVariable("STREAMSPACE_BENCH_POSTGRES");
if (string.IsNullOrEmpty(postgres))
{
    Console.Error.WriteLine("STREAMSPACE_BENCH_POSTGRES is not set: run the benchmarks through ./streamspace bench.");
    return 2;
}

var work = Directory.CreateTempSubdirectory("streamspace-bench-").FullName;
var database = $"bench_{Guid.NewGuid():N}";
await using (var admin = new NpgsqlConnection(postgres))
{
    await admin.OpenAsync();
    await new NpgsqlCommand($"CREATE DATABASE {database}", admin).ExecuteNonQueryAsync();
}

var connectionString = new NpgsqlConnectionStringBuilder(postgres) { Database = database, MaxPoolSize = 200 }.ConnectionString;
var apiPort = BenchContext.FreePort();
var api = new Uri($"http://127.0.0.1:{apiPort}");
const string adminPassword = "bench-admin-password";
const string agentKey = "bench-agent-key-0123456789abcdefghijklmnopqrstuvwxyz";
var common = new Dictionary<string, string> { ["PATH"] = Environment.GetEnvironmentVariable("PATH")!, ["HOME"] = Environment.GetEnvironmentVariable("HOME")!, ["DOTNET_gcServer"] = "0" };
using var apiProcess = BenchProcess.Start("api", "dotnet", [BenchPaths.Built("StreamSpace.Api")], new Dictionary<string, string>(common)
{
    ["ConnectionStrings__streamspace"] = connectionString,
    ["JWT_SECRET"] = "bench-secret-that-is-long-enough-for-hmac-sha256-signing",
    ["ADMIN_PASSWORD"] = adminPassword,
    ["PROVISIONED_AGENT_ID"] = "bench-agent",
    ["PROVISIONED_AGENT_KEY"] = agentKey,
    ["SESSION_QUOTA"] = "100",
    ["LOGIN_ATTEMPTS_PER_MINUTE"] = "1000",
    ["ASPNETCORE_URLS"] = api.ToString(),
    // Tunnel v2's data listener on a free port, reached by the agents at the loopback address (an API before tunnel
    // v2 ignores both, as every process ignores settings it does not know).
    ["DATA_PORT"] = "0",
    ["REPLICA_ADDRESS"] = "127.0.0.1",
    ["Logging__LogLevel__Default"] = "Warning",
}, Path.Combine(work, "api.log"));
using var http = new HttpClient { BaseAddress = api, Timeout = TimeSpan.FromSeconds(60) };
await BenchContext.Until(async () => (await BenchContext.Try(() => http.GetAsync("/health")))?.IsSuccessStatusCode == true, "the API to answer /health as healthy");

var mainAgent = BenchAgent.Start("bench-agent", agentKey, api, common, new Dictionary<string, string>(), work);
using var mainAgentProcess = mainAgent.Process;
var login = await (await http.PostAsJsonAsync("/api/v1/auth/login", new { username = "admin", password = adminPassword })).Content.ReadFromJsonAsync<JsonElement>();
var token = login.GetProperty("token").GetString()!;
http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);

var bench = new BenchContext(quick, work, api, http, token, connectionString, apiProcess, mainAgent, common);
await bench.WaitOnlineAsync(mainAgent.Id);
var failures = new List<string>();
try
{
    foreach (var section in sections.Where(s => only is null ? !s.OnlyWhenNamed : only.Contains(s.Name)))
    {
        Console.WriteLine($"\n==> {section.Name} (at most {section.Limit.TotalMinutes:0} min)\n");
        var clock = Stopwatch.StartNew();
        try
        {
            await BenchContext.Within(section.Run(bench), section.Limit, $"the {section.Name} section's end");
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            var failure = $"**The {section.Name} section failed after {clock.Elapsed.TotalSeconds:0} s:** {e.GetType().Name}: {e.Message}";
            failures.Add(failure);
            bench.Line("");
            bench.Line(failure);
            bench.Line("");
            Console.Error.WriteLine(e);
        }
    }
}
finally
{
    bench.StopExtraAgents();
}

var header = new StringBuilder();
header.AppendLine("# StreamSpace benchmarks");
header.AppendLine();
header.AppendLine("Written by `./streamspace bench`; every figure below comes from the run named here. Do not edit it by hand: the " +
    "analysis of these figures, and of earlier runs, is in [benchmarks-analysis.md](benchmarks-analysis.md), which names the run each figure it quotes came from.");
header.AppendLine();
header.AppendLine($"- Run: commit {Git("rev-parse --short HEAD")}{(Git("status --porcelain --untracked-files=no").Length > 0 ? " with uncommitted changes" : "")}, " +
    $"{DateTimeOffset.UtcNow:yyyy-MM-dd HH:mm} UTC{(quick ? ", --quick" : "")}{(only is null ? "" : $", only {string.Join(", ", only)}")}");
header.AppendLine($"- Machine: {Environment.ProcessorCount} cores ({CpuModel()}), {MemoryGiB():0} GiB, {Environment.OSVersion}, .NET {Environment.Version}");
header.AppendLine($"- Repetitions: {bench.Repetitions}; figures are medians with [min–max]. MB = 10^6 bytes. All traffic on loopback.");
if (Environment.GetEnvironmentVariable("STREAMSPACE_BENCH_SYSTEM_ROOT") is { } systemRoot)
{
    header.AppendLine($"- System under test: the API and agent built in {systemRoot}");
}

header.AppendLine();
header.AppendLine("## Issue 15's goals");
header.AppendLine();
header.AppendLine("| Goal | Measured | Anchor (same run) | Ratio | Met |");
header.AppendLine("|---|---|---|---|---|");
foreach (var (goal, target) in IssueGoals())
{
    header.AppendLine(bench.Goals.TryGetValue(goal, out var result)
        ? $"| {target} | {result.Measured} | {result.Anchor} | {result.Ratio} | {(result.Met ? "met" : "missed")} |"
        : $"| {target} | not measured in this run | | | |");
}

header.AppendLine();
if (bench.Targets.Count > 0)
{
    header.AppendLine("## Other targets");
    header.AppendLine();
    header.AppendLine("| Target | Measured | Met |");
    header.AppendLine("|---|---|---|");
    foreach (var row in bench.Targets)
    {
        header.AppendLine(row);
    }

    header.AppendLine();
}

var footer = new StringBuilder();
footer.AppendLine($"API resident memory after the run: {apiProcess.MemoryMiB:0} MiB; agent: {mainAgentProcess.MemoryMiB:0} MiB.");
foreach (var note in bench.Notes)
{
    footer.AppendLine();
    footer.AppendLine(note);
}

var report = header.ToString() + bench.Report + footer;
Console.WriteLine();
Console.WriteLine(header.ToString());
Console.WriteLine(footer.ToString());
await File.WriteAllTextAsync(Path.Combine(work, "benchmarks.md"), report);
if (!quick && only is null)
{
    await File.WriteAllTextAsync(Path.Combine(BenchPaths.Root, "docs", "benchmarks.md"), report);
    Console.WriteLine("Wrote docs/benchmarks.md");
}
else
{
    Console.WriteLine($"A --quick or --only run leaves docs/benchmarks.md alone; this run's report: {Path.Combine(work, "benchmarks.md")}");
}

foreach (var failure in failures)
{
    Console.Error.WriteLine(failure);
}

return failures.Count == 0 ? 0 : 1;

static IEnumerable<(Goal Goal, string Target)> IssueGoals() =>
[
    (Goal.Throughput, "single-stream throughput ≥ 1.0× websockify"),
    (Goal.CpuPerGiB, "relay CPU s per GiB (every StreamSpace process on the path) ≤ 1.5× websockify"),
    (Goal.RoundTrip, "64-byte round trip p50 ≤ 1.2×, p99 ≤ 1.0× websockify"),
    (Goal.PacedStreams, "50 viewers paced at 3 MB/s: all 50 hold their rate, relay CPU under one core"),
    (Goal.ConcurrentStarts, "10 concurrent local starts: POST → running p95 < 2 s"),
];

static string Usage(IEnumerable<Section> sections) =>
    "usage: ./streamspace bench [--quick] [--only SECTION[,SECTION...]] [--help]\n\n" +
    "Runs the API, agents and every anchor (raw TCP, websockify, bare Xvnc, /alive) as real processes on loopback and\n" +
    "measures side by side. A full run (about 20 minutes on 2 cores; keep the machine otherwise idle) writes\n" +
    "docs/benchmarks.md; --quick (short runs, one repetition) and --only print the report and keep it in the run's\n" +
    "temporary folder. Every wait has a time limit: a section that exceeds one fails with a message, the others still run,\n" +
    "and the exit code is 1.\n\n" +
    "sections:\n" + string.Join("\n", sections.Select(s => $"  {s.Name,-18} {s.Description}")) + "\n\n" +
    "environment:\n" +
    "  STREAMSPACE_BENCH_SYSTEM_ROOT  measure the API and agent of another checkout, built in Release (before/after)\n" +
    "  STREAMSPACE_BENCH_TUNNEL_MIB   MiB per single-stream throughput run (default 1024, --quick 128)";

string Git(string arguments)
{
    using var git = Process.Start(new ProcessStartInfo("git", arguments) { RedirectStandardOutput = true, WorkingDirectory = BenchPaths.Root })!;
    var output = git.StandardOutput.ReadToEnd().Trim();
    git.WaitForExit(10_000);
    return output;
}

static string CpuModel() => File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':')[1].Trim() ?? "unknown CPU";

static double MemoryGiB() => double.Parse(File.ReadLines("/proc/meminfo").First().Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture) / 1024 / 1024;

/// <summary>One part of the run: its name for --only, what it measures, the time it may take at most, and whether it runs only when named (a part of another section).</summary>
internal sealed record Section(string Name, string Description, TimeSpan Limit, Func<BenchContext, Task> Run, bool OnlyWhenNamed = false);
