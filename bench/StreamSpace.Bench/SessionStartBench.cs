using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using static StreamSpace.Bench.Figures;

namespace StreamSpace.Bench;

/// <summary>
/// Section 3: local-platform launches, timed from POST to running and to the first framebuffer update through /vnc.
/// "Running" is taken from the live session events (GET /api/v1/sessions/events), as the web UI learns it: polling
/// every launch's GET every few milliseconds would load the two cores the launches share.
/// </summary>
public static class SessionStartBench
{
    public static async Task RunAsync(BenchContext bench)
    {
        var quick = bench.Quick;
        await using var events = await SessionEvents.OpenAsync(bench);
        bench.Line("## 3. Session start (local platform: Xvnc + openbox + xterm)");
        bench.Line("");
        bench.Line("| Launches | POST → running p50 / p95 ms | POST → first framebuffer update through /vnc p50 / p95 ms |");
        bench.Line("|---|---|---|");
        var p50s = new Dictionary<string, (double P50, double P95)>();
        foreach (var (label, count, parallel) in new[] { ("20 sequential", quick ? 3 : 20, 1), ("10 concurrent", quick ? 3 : 10, quick ? 3 : 10) })
        {
            var running = new List<double>();
            var firstFrame = new List<double>();
            for (var batch = 0; batch < count; batch += parallel)
            {
                var results = await Task.WhenAll(Enumerable.Range(0, Math.Min(parallel, count - batch)).Select(async _ =>
                {
                    var start = Stopwatch.GetTimestamp();
                    var created = await (await bench.Http.PostAsJsonAsync("/api/v1/sessions", new { template = "xterm" })).Content.ReadFromJsonAsync<JsonElement>();
                    var id = created.GetProperty("id").GetString()!;
                    var toRunning = Stopwatch.GetElapsedTime(start, await events.RunningAsync(id)).TotalMilliseconds;
                    await using (var viewer = await RfbClient.WebSocketAsync(await bench.VncUrlAsync(id), null))
                    {
                        await viewer.UpdateAsync(1, 1);
                    }

                    var toFrame = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
                    await bench.Http.DeleteAsync($"/api/v1/sessions/{id}");
                    return (toRunning, toFrame);
                }));
                running.AddRange(results.Select(r => r.toRunning));
                firstFrame.AddRange(results.Select(r => r.toFrame));
            }

            p50s[label] = (Percentile(running, 50), Percentile(running, 95));
            bench.Line($"| {label} | {Percentile(running, 50):0} / {Percentile(running, 95):0} | {Percentile(firstFrame, 50):0} / {Percentile(firstFrame, 95):0} |");
        }

        bench.Line("");
        foreach (var (label, (p50, p95)) in p50s)
        {
            bench.Target($"session start p50 < 1 s, p95 < 2 s ({label.Split(' ')[1]})", $"{p50:0} / {p95:0} ms", p50 < 1000 && p95 < 2000);
        }
    }

    /// <summary>The admin's live session events; tells when each session first showed as running.</summary>
    private sealed class SessionEvents : IAsyncDisposable
    {
        private readonly ConcurrentDictionary<string, TaskCompletionSource<long>> running = new();
        private readonly HttpClient client;
        private readonly CancellationTokenSource stop = new();
        private readonly TaskCompletionSource connected = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly Task reader;

        private SessionEvents(HttpClient client, Stream stream)
        {
            this.client = client;
            reader = ReadAsync(stream);
        }

        public static async Task<SessionEvents> OpenAsync(BenchContext bench)
        {
            // An own client: the shared one's timeout would end the stream.
            var client = new HttpClient { BaseAddress = bench.Api, Timeout = Timeout.InfiniteTimeSpan };
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", bench.Token);
            var response = await client.GetAsync("/api/v1/sessions/events", HttpCompletionOption.ResponseHeadersRead);
            response.EnsureSuccessStatusCode();
            var events = new SessionEvents(client, await response.Content.ReadAsStreamAsync());
            // The stream's first line comes as the subscription is made; launches start after it.
            await events.connected.Task;
            return events;
        }

        /// <summary>The Stopwatch timestamp at which the session's "running" event arrived.</summary>
        public Task<long> RunningAsync(string id) => Slot(id).Task;

        private TaskCompletionSource<long> Slot(string id) =>
            running.GetOrAdd(id, _ => new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously));

        private async Task ReadAsync(Stream stream)
        {
            using var lines = new StreamReader(stream);
            try
            {
                while (await lines.ReadLineAsync(stop.Token) is { } line)
                {
                    connected.TrySetResult();
                    if (!line.StartsWith("data: ", StringComparison.Ordinal))
                    {
                        continue;
                    }

                    var arrived = Stopwatch.GetTimestamp();
                    using var session = JsonDocument.Parse(line["data: ".Length..]);
                    var id = session.RootElement.GetProperty("id").GetString()!;
                    switch (session.RootElement.GetProperty("state").GetString())
                    {
                        case "running":
                            Slot(id).TrySetResult(arrived);
                            break;
                        case "failed":
                            Slot(id).TrySetException(new InvalidOperationException($"session {id} failed: {session.RootElement.GetProperty("failure_reason")}"));
                            break;
                    }
                }
            }
            catch (Exception e) when (e is OperationCanceledException or IOException or HttpRequestException)
            {
                // Disposed, or the API went away: whoever still waits learns it.
                connected.TrySetException(e);
                foreach (var slot in running.Values)
                {
                    slot.TrySetException(e);
                }
            }
        }

        public async ValueTask DisposeAsync()
        {
            await stop.CancelAsync();
            client.Dispose();
            await reader.ContinueWith(_ => { }, TaskScheduler.Default);
            stop.Dispose();
        }
    }
}
