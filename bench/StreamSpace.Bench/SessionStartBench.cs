using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using static StreamSpace.Bench.Figures;

namespace StreamSpace.Bench;

/// <summary>
/// Local-platform launches (Xvnc + openbox + xterm), timed from POST to running and to the first framebuffer update
/// through /vnc, one at a time and ten at once; beside them, in the same run, bare Xvnc servers started the same way
/// (one at a time, ten at once), the part of a launch the control plane cannot make faster. "Running" is taken from the
/// live session events (GET /api/v1/sessions/events), as the web UI learns it: polling every launch's GET every few
/// milliseconds would load the two cores the launches share.
/// </summary>
public static class SessionStartBench
{
    private static readonly TimeSpan LaunchLimit = TimeSpan.FromSeconds(60);

    public static async Task SequentialAsync(BenchContext bench)
    {
        var launches = bench.Quick ? 3 : 20;
        var (running, firstFrame) = await LaunchBatchesAsync(bench, launches, 1);
        var bare = new List<double>();
        for (var i = 0; i < (bench.Quick ? 3 : 10); i++)
        {
            bare.AddRange(await BareXvncAsync(1));
        }

        bench.Line("## 3. Session start, one at a time (local platform: Xvnc + openbox + xterm)");
        bench.Line("");
        bench.Line("| Launches | POST → running p50 / p95 ms | POST → first framebuffer update through /vnc p50 / p95 ms | Anchor: a bare Xvnc to ready p50 / p95 ms |");
        bench.Line("|---|---|---|---|");
        bench.Line($"| {launches} one after another | {Percentile(running, 50):0} / {Percentile(running, 95):0} | {Percentile(firstFrame, 50):0} / {Percentile(firstFrame, 95):0} | " +
            $"{Percentile(bare, 50):0} / {Percentile(bare, 95):0} ({bare.Count} starts) |");
        bench.Line("");
        bench.Target("session start one at a time: p50 < 1 s, p95 < 2 s", $"{Percentile(running, 50):0} / {Percentile(running, 95):0} ms",
            Percentile(running, 50) < 1000 && Percentile(running, 95) < 2000);
    }

    public static async Task ConcurrentAsync(BenchContext bench)
    {
        const int atOnce = 10;
        var batches = bench.Repetitions;
        var (running, firstFrame) = await LaunchBatchesAsync(bench, atOnce * batches, atOnce);
        var bare = new List<double>();
        for (var i = 0; i < batches; i++)
        {
            bare.AddRange(await BareXvncAsync(atOnce));
        }

        bench.Line("## 4. Concurrent starts (10 local launches at once by one user)");
        bench.Line("");
        bench.Line("| Launches | POST → running p50 / p95 ms | POST → first framebuffer update through /vnc p50 / p95 ms | Anchor: 10 bare Xvnc at once, to ready p50 / p95 ms |");
        bench.Line("|---|---|---|---|");
        bench.Line($"| {batches} × {atOnce} at once | {Percentile(running, 50):0} / {Percentile(running, 95):0} | {Percentile(firstFrame, 50):0} / {Percentile(firstFrame, 95):0} | " +
            $"{Percentile(bare, 50):0} / {Percentile(bare, 95):0} |");
        bench.Line("");
        bench.Line("The anchor starts TigerVNC's Xvnc alone, ten at once, as the local platform starts it (1280×800, depth 24), and times " +
            "each to the moment it reports its display ready (-displayfd): no window manager, no program, no control plane.");
        bench.Line("");
        var p95 = Percentile(running, 95);
        bench.SetGoal(Goal.ConcurrentStarts, $"p50 {Percentile(running, 50):0} / p95 {p95:0} ms", $"10 bare Xvnc at once: p95 {Percentile(bare, 95):0} ms",
            $"{p95 / 2000:0.00}× the 2 s limit", p95 < 2000);
    }

    /// <summary>Launches <paramref name="count"/> xterm sessions, <paramref name="parallel"/> at a time; each stopped after its first frame.</summary>
    private static async Task<(List<double> Running, List<double> FirstFrame)> LaunchBatchesAsync(BenchContext bench, int count, int parallel)
    {
        await using var events = await SessionEvents.OpenAsync(bench);
        var running = new List<double>();
        var firstFrame = new List<double>();
        var launched = new List<string>();
        try
        {
            for (var batch = 0; batch < count; batch += parallel)
            {
                var results = await Task.WhenAll(Enumerable.Range(0, Math.Min(parallel, count - batch)).Select(async _ =>
                {
                    var start = Stopwatch.GetTimestamp();
                    using var response = await bench.Http.PostAsJsonAsync("/api/v1/sessions", new { template = "xterm" });
                    if (!response.IsSuccessStatusCode)
                    {
                        throw new InvalidOperationException($"a launch answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
                    }

                    var id = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetString()!;
                    lock (launched)
                    {
                        launched.Add(id);
                    }

                    var toRunning = Stopwatch.GetElapsedTime(start, await events.RunningAsync(id, LaunchLimit)).TotalMilliseconds;
                    await using (var viewer = await BenchContext.Within(RfbClient.WebSocketAsync(await bench.VncUrlAsync(id), null), TimeSpan.FromSeconds(15), $"session {id}: the RFB handshake through /vnc"))
                    {
                        await BenchContext.Within(viewer.UpdateAsync(1, 1), TimeSpan.FromSeconds(15), $"session {id}: a first framebuffer update");
                    }

                    return (toRunning, Stopwatch.GetElapsedTime(start).TotalMilliseconds);
                }));
                running.AddRange(results.Select(r => r.toRunning));
                firstFrame.AddRange(results.Select(r => r.Item2));
                await Task.WhenAll(launched.Skip(batch).Select(bench.StopAsync));
            }
        }
        catch
        {
            // Leave no session running for the next section.
            foreach (var id in launched)
            {
                await bench.Http.DeleteAsync($"/api/v1/sessions/{id}");
            }

            throw;
        }

        return (running, firstFrame);
    }

    /// <summary>Starts <paramref name="count"/> bare Xvnc servers at once; the milliseconds each took to report its display ready.</summary>
    private static async Task<double[]> BareXvncAsync(int count)
    {
        var servers = new List<Process>();
        try
        {
            var start = Stopwatch.GetTimestamp();
            for (var i = 0; i < count; i++)
            {
                // -displayfd 1: Xvnc picks a free display and writes its number to stdout once it accepts connections.
                servers.Add(Process.Start(new ProcessStartInfo("Xvnc",
                    ["-displayfd", "1", "-rfbport", BenchContext.FreePort().ToString(CultureInfo.InvariantCulture), "-localhost", "-SecurityTypes", "None",
                     "-geometry", "1280x800", "-depth", "24", "-nolisten", "tcp"])
                { RedirectStandardOutput = true, RedirectStandardError = true })!);
            }

            foreach (var server in servers)
            {
                _ = server.StandardError.ReadToEndAsync();
            }

            return await Task.WhenAll(servers.Select(async server =>
            {
                var line = await BenchContext.Within(server.StandardOutput.ReadLineAsync(), TimeSpan.FromSeconds(30), "a bare Xvnc to report its display");
                if (string.IsNullOrWhiteSpace(line))
                {
                    throw new InvalidOperationException("a bare Xvnc exited without reporting a display");
                }

                return Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            }));
        }
        finally
        {
            foreach (var server in servers)
            {
                if (!server.HasExited)
                {
                    // SIGTERM, so Xvnc removes its /tmp/.X*-lock and socket (a killed one leaves them, taking the display).
                    using (var term = Process.Start("kill", ["-TERM", server.Id.ToString(CultureInfo.InvariantCulture)]))
                    {
                        term.WaitForExit(5_000);
                    }

                    if (!server.WaitForExit(5_000))
                    {
                        server.Kill();
                    }
                }

                server.Dispose();
            }
        }
    }
}
