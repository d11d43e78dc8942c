using System.Diagnostics;
using System.Globalization;
using Npgsql;
using static StreamSpace.Bench.Figures;

namespace StreamSpace.Bench;

/// <summary>Section 4: GET /api/v1/sessions with 100 sessions stored, under wrk, with /alive as the same server's ceiling.</summary>
public static class ApiBench
{
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

        var seconds = bench.Quick ? 3 : 10;
        bench.Line($"## 4. API (wrk, 2 threads, 50 connections, {seconds} s; wrk runs on the same 2 cores as the API and PostgreSQL)");
        bench.Line("");
        bench.Line("| Endpoint | Requests/s | Latency p50 / p99 ms |");
        bench.Line("|---|---|---|");
        (double Rate, double P99) sessions = default;
        foreach (var (label, path, authorize) in new[] { ("GET /api/v1/sessions (100 stored)", "/api/v1/sessions", true), ("GET /alive (ceiling)", "/alive", false) })
        {
            var rates = new List<double>();
            var p50s = new List<double>();
            var p99s = new List<double>();
            // Discarded: the first seconds of a path pay for JIT compilation and for filling pools and caches.
            Wrk(new Uri(bench.Api, path), authorize ? bench.Token : null, 2);
            for (var rep = 0; rep < bench.Repetitions; rep++)
            {
                var (rate, p50, p99) = Wrk(new Uri(bench.Api, path), authorize ? bench.Token : null, seconds);
                rates.Add(rate);
                p50s.Add(p50);
                p99s.Add(p99);
            }

            if (authorize)
            {
                sessions = (Median(rates), Median(p99s));
            }

            bench.Line($"| {label} | {Figure(rates, "0")} | {Figure(p50s, "0.0")} / {Figure(p99s, "0.0")} |");
        }

        bench.Line("");
        bench.Target("GET /api/v1/sessions ≥ 5,000 req/s, p99 < 20 ms", $"{sessions.Rate:0} req/s, p99 {sessions.P99:0.0} ms", sessions.Rate >= 5000 && sessions.P99 < 20);
    }

    private static (double Rate, double P50, double P99) Wrk(Uri url, string? bearer, int seconds)
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
        var rate = double.Parse(output.Split('\n').First(l => l.StartsWith("Requests/sec", StringComparison.Ordinal)).Split(':')[1].Trim(), CultureInfo.InvariantCulture);
        return (rate, Value("50%"), Value("99%"));
    }

    private static double Milliseconds(string wrkTime) => wrkTime.EndsWith("us", StringComparison.Ordinal) ? double.Parse(wrkTime[..^2], CultureInfo.InvariantCulture) / 1000
        : wrkTime.EndsWith("ms", StringComparison.Ordinal) ? double.Parse(wrkTime[..^2], CultureInfo.InvariantCulture)
        : double.Parse(wrkTime[..^1], CultureInfo.InvariantCulture) * 1000;
}
