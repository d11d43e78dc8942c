using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using Npgsql;
using static StreamSpace.Bench.Figures;

namespace StreamSpace.Bench;

/// <summary>
/// GET /api/v1/sessions under wrk, beside /alive (the same server's ceiling): the admin's list of 100 sessions (served
/// from the list cache), and 100 users each listing their own sessions, with the cache warm and with it emptied every
/// few milliseconds by session changes, so that most requests read PostgreSQL. Any answer but 2xx fails the section.
/// </summary>
public static class ApiBench
{
    private const int Users = 100;
    private static readonly TimeSpan ChurnInterval = TimeSpan.FromMilliseconds(5);

    public static async Task RunAsync(BenchContext bench)
    {
        await using (var connection = new NpgsqlConnection(bench.ConnectionString))
        {
            await connection.OpenAsync();
            await new NpgsqlCommand(
                "INSERT INTO sessions (id, user_id, template, state, agent_id, platform) " +
                "SELECT 'bench-' || g, (SELECT id FROM users WHERE username = 'admin'), 'xterm', 'stopped', 'bench-agent', 'local' FROM generate_series(1, 100) g",
                connection).ExecuteNonQueryAsync();
        }

        var tokens = await UsersWithSessionsAsync(bench);
        var tokenScript = Path.Combine(bench.Work, "wrk-users.lua");
        await File.WriteAllTextAsync(tokenScript,
            "local tokens = {" + string.Join(",", tokens.Select(t => $"\"{t}\"")) + "}\n" +
            "local i = math.random(#tokens)\n" +
            "request = function()\n  i = i % #tokens + 1\n  return wrk.format(\"GET\", nil, { [\"Authorization\"] = \"Bearer \" .. tokens[i] })\nend\n");

        // 6 s a repetition: four cases of three keep the section near two minutes of the run's twenty.
        var seconds = bench.Quick ? 3 : 6;
        bench.Line($"## 6. API (wrk, 2 threads, 50 connections, {seconds} s; wrk runs on the same 2 cores as the API and PostgreSQL)");
        bench.Line("");
        bench.Line("| Endpoint | Requests/s | Latency p50 / p99 ms | ÷ /alive |");
        bench.Line("|---|---|---|---|");
        var cases = new (string Label, string Path, string[] Authorization, bool Churn)[]
        {
            ("GET /alive (the ceiling)", "/alive", [], false),
            ("GET /api/v1/sessions, the admin's 100 sessions (cached)", "/api/v1/sessions", ["-H", $"Authorization: Bearer {bench.Token}"], false),
            ($"GET /api/v1/sessions, {Users} users each listing their own 3 (cached per user)", "/api/v1/sessions", ["-s", tokenScript], false),
            ($"GET /api/v1/sessions, {Users} users, the cache emptied by session changes", "/api/v1/sessions", ["-s", tokenScript], true),
        };
        double ceiling = double.NaN;
        var figures = new Dictionary<string, (double Rate, double P99)>();
        foreach (var (label, path, authorization, churn) in cases)
        {
            using var stopChurn = new CancellationTokenSource();
            var churning = churn ? ChurnAsync(bench, stopChurn.Token) : Task.FromResult(0L);
            var rates = new List<double>();
            var p50s = new List<double>();
            var p99s = new List<double>();
            var clock = Stopwatch.StartNew();
            try
            {
                // Discarded: the first seconds of a path pay for JIT compilation and for filling pools and caches.
                await WrkAsync(new Uri(bench.Api, path), authorization, 2);
                for (var rep = 0; rep < bench.Repetitions; rep++)
                {
                    var (rate, p50, p99) = await WrkAsync(new Uri(bench.Api, path), authorization, seconds);
                    rates.Add(rate);
                    p50s.Add(p50);
                    p99s.Add(p99);
                }
            }
            finally
            {
                await stopChurn.CancelAsync();
            }

            var changes = await churning;
            if (path == "/alive")
            {
                ceiling = Median(rates);
            }

            figures[label] = (Median(rates), Median(p99s));
            // After each change every user's next list is a miss: at most changes/s × users of the requests read PostgreSQL.
            var changesPerSecond = changes / clock.Elapsed.TotalSeconds;
            var misses = churn ? $" ({changesPerSecond:0} changes/s, so ≈ {Math.Min(1, changesPerSecond * Users / Median(rates)):P0} misses)" : "";
            bench.Line($"| {label}{misses} | {Figure(rates, "0")} | {Figure(p50s, "0.0")} / {Figure(p99s, "0.0")} | {Median(rates) / ceiling:0.00} |");
        }

        bench.Line("");
        bench.Line("Each case runs once for 2 s, not counted, then the repetitions. A run with any non-2xx answer fails the section. " +
            $"The users' cases sign in {Users} users, give each 3 stopped sessions, and rotate their tokens over the requests; " +
            "the misses case NOTIFYs a session change on the channel every API instance listens on, which empties the list cache, as a busy installation's changes do.");
        bench.Line("");
        var (cachedRate, cachedP99) = figures[cases[1].Label];
        bench.Target("GET /api/v1/sessions ≥ 5,000 req/s, p99 < 20 ms", $"{cachedRate:0} req/s, p99 {cachedP99:0.0} ms", cachedRate >= 5000 && cachedP99 < 20);
    }

    /// <summary>Creates the users through the API, each with 3 stopped sessions in the database; returns their tokens.</summary>
    private static async Task<List<string>> UsersWithSessionsAsync(BenchContext bench)
    {
        var tokens = new List<string>();
        using var anonymous = new HttpClient { BaseAddress = bench.Api, Timeout = TimeSpan.FromSeconds(30) };
        for (var i = 0; i < Users; i++)
        {
            var username = $"bench-user-{i:D3}";
            const string password = "bench-user-password";
            (await bench.Http.PostAsJsonAsync("/api/v1/users", new { username, password, role = "user" })).EnsureSuccessStatusCode();
            var login = await (await anonymous.PostAsJsonAsync("/api/v1/auth/login", new { username, password })).Content.ReadFromJsonAsync<JsonElement>();
            tokens.Add(login.GetProperty("token").GetString()!);
        }

        await using var connection = new NpgsqlConnection(bench.ConnectionString);
        await connection.OpenAsync();
        await new NpgsqlCommand(
            "INSERT INTO sessions (id, user_id, template, state, agent_id, platform) " +
            "SELECT 'bench-' || u.username || '-' || g, u.id, 'xterm', 'stopped', 'bench-agent', 'local' " +
            "FROM users u CROSS JOIN generate_series(1, 3) g WHERE u.username LIKE 'bench-user-%'",
            connection).ExecuteNonQueryAsync();
        return tokens;
    }

    /// <summary>NOTIFYs a session change every few milliseconds until cancelled, as committed changes do; returns how many.</summary>
    private static async Task<long> ChurnAsync(BenchContext bench, CancellationToken stop)
    {
        await using var connection = new NpgsqlConnection(bench.ConnectionString);
        await connection.OpenAsync(CancellationToken.None);
        await using var notify = new NpgsqlCommand(
            "SELECT pg_notify('session_events', json_build_object('id', id, 'user_id', user_id)::text) FROM sessions WHERE id = 'bench-1'", connection);
        long changes = 0;
        using var timer = new PeriodicTimer(ChurnInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(stop))
            {
                await notify.ExecuteNonQueryAsync(CancellationToken.None);
                changes++;
            }
        }
        catch (OperationCanceledException)
        {
            // Done.
        }

        return changes;
    }

    private static async Task<(double Rate, double P50, double P99)> WrkAsync(Uri url, string[] options, int seconds)
    {
        var arguments = new List<string> { "-t2", "-c50", $"-d{seconds}s", "--latency" };
        arguments.AddRange(options);
        arguments.Add(url.ToString());
        using var wrk = Process.Start(new ProcessStartInfo("wrk", arguments) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var output = wrk.StandardOutput.ReadToEndAsync();
        var error = wrk.StandardError.ReadToEndAsync();
        try
        {
            await BenchContext.Within(wrk.WaitForExitAsync(), TimeSpan.FromSeconds(seconds + 30), $"wrk against {url}");
        }
        catch (TimeoutException)
        {
            wrk.Kill();
            throw;
        }

        var lines = (await output).Split('\n');
        if (wrk.ExitCode != 0 || !lines.Any(l => l.StartsWith("Requests/sec", StringComparison.Ordinal)))
        {
            throw new InvalidOperationException($"wrk against {url} failed ({wrk.ExitCode}): {await error}{string.Join('\n', lines)}");
        }

        if (lines.FirstOrDefault(l => l.TrimStart().StartsWith("Non-2xx or 3xx responses:", StringComparison.Ordinal)) is { } non2xx)
        {
            throw new InvalidOperationException($"wrk against {url} got answers other than 2xx: {non2xx.Trim()}");
        }

        double Value(string prefix) => Milliseconds(lines.First(l => l.TrimStart().StartsWith(prefix, StringComparison.Ordinal)).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]);
        var rate = double.Parse(lines.First(l => l.StartsWith("Requests/sec", StringComparison.Ordinal)).Split(':')[1].Trim(), CultureInfo.InvariantCulture);
        return (rate, Value("50%"), Value("99%"));
    }

    private static double Milliseconds(string wrkTime) => wrkTime.EndsWith("us", StringComparison.Ordinal) ? double.Parse(wrkTime[..^2], CultureInfo.InvariantCulture) / 1000
        : wrkTime.EndsWith("ms", StringComparison.Ordinal) ? double.Parse(wrkTime[..^2], CultureInfo.InvariantCulture)
        : double.Parse(wrkTime[..^1], CultureInfo.InvariantCulture) * 1000;
}
