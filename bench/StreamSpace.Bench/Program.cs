using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Npgsql;
using StreamSpace.Bench;

// ./streamspace bench [--quick] [--only tunnel|session-start|api]: runs the system under test as real processes on
// loopback and measures side by side. Each section lives in its own file; this file starts the API and the agent,
// runs the sections in order and writes docs/benchmarks.md (only after a full run of every section).
// Benchmarks assert nothing; they print a table and write the report.
if (args is ["--synthetic-vnc", .. var syntheticArguments])
{
    // The tunnel section's stand-in VNC server, run by the fake Xvnc a bench template puts on a session's PATH.
    return await SyntheticVncServer.RunAsync(syntheticArguments);
}

var root = FindRoot();
var quick = args.Contains("--quick");
var onlyIndex = Array.IndexOf(args, "--only");
var only = onlyIndex >= 0 && onlyIndex + 1 < args.Length ? args[onlyIndex + 1] : null;
var postgres = Environment.GetEnvironmentVariable("STREAMSPACE_BENCH_POSTGRES") ?? throw new InvalidOperationException("Run through ./streamspace bench.");
var work = Directory.CreateTempSubdirectory("streamspace-bench-").FullName;

var sections = new (string Name, Func<BenchContext, Task> Run)[]
{
    ("tunnel", TunnelBench.RunAsync),
    ("session-start", SessionStartBench.RunAsync),
    ("api", ApiBench.RunAsync),
    ("hub", bench => HubBench.RunAsync(bench, Built)),
};
if (only is not null && sections.All(s => s.Name != only))
{
    Console.Error.WriteLine($"--only takes one of: {string.Join(", ", sections.Select(s => s.Name))}");
    return 2;
}

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
await BenchContext.Until(async () => (await BenchContext.Try(() => http.GetAsync("/health")))?.IsSuccessStatusCode == true, "the API");

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
await BenchContext.Until(async () => (await http.GetStringAsync("/api/v1/agents/bench-agent")).Contains("\"status\":\"online\""), "the agent");

var bench = new BenchContext(quick, work, api, http, token, connectionString, apiProcess, agentProcess, agentData, common);
bench.Line($"# StreamSpace benchmarks");
bench.Line("");
bench.Line($"- Date: {DateTimeOffset.UtcNow:yyyy-MM-dd HH:mm} UTC; commit {Git("rev-parse --short HEAD")}");
bench.Line($"- Machine: {Environment.ProcessorCount} cores ({CpuModel()}), {MemoryGiB():0} GiB, {Environment.OSVersion}, .NET {Environment.Version}");
bench.Line($"- Repetitions: {bench.Repetitions}; figures are medians with [min–max]. MB = 10^6 bytes. All traffic on loopback.");
bench.Line("");

foreach (var (name, run) in sections)
{
    if (only is null || only == name)
    {
        await run(bench);
    }
}

bench.Line("## Against the targets");
bench.Line("");
bench.Line("| Target | Measured | Met |");
bench.Line("|---|---|---|");
foreach (var row in bench.Targets)
{
    bench.Line(row);
}

bench.Line("");
bench.Line($"API resident memory after the run: {apiProcess.MemoryMiB:0} MiB; agent: {agentProcess.MemoryMiB:0} MiB.");
foreach (var note in bench.Notes)
{
    bench.Line("");
    bench.Line(note);
}

if (!quick && only is null)
{
    await File.WriteAllTextAsync(Path.Combine(root, "docs", "benchmarks.md"), bench.Report);
    Console.WriteLine($"\nWrote docs/benchmarks.md");
}

return 0;

// STREAMSPACE_BENCH_SYSTEM_ROOT runs the API and agent of another checkout (e.g. `git archive` of an older commit,
// built in Release) under the same harness, for before-and-after figures.
string Built(string project) => Path.Combine(Environment.GetEnvironmentVariable("STREAMSPACE_BENCH_SYSTEM_ROOT") ?? root, project, "bin", "Release", "net10.0", project + ".dll");

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
