using System.Buffers.Binary;
using System.Diagnostics;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text.Json;
using StreamSpace.Agent.Tunnel;
using static StreamSpace.Bench.Figures;

namespace StreamSpace.Bench;

/// <summary>
/// Section 1: the VNC tunnel (path c) beside raw TCP (a) and websockify (b), against the synthetic VNC server, in the
/// same run, with the repetitions of the three paths interleaved so that the shared machine's noise hits all alike;
/// then 50 paced streams on one agent. Section 2: a real Xvnc under an animating xterm, direct and through (c).
/// </summary>
public static class TunnelBench
{
    private const double MB = 1e6;
    private const double GiB = 1024.0 * 1024 * 1024;

    private sealed record TunnelPath(string Name, Func<Task<Stream>> Connect, BenchProcess[] Relays);

    public static async Task RunAsync(BenchContext bench)
    {
        var fakeXvncFolder = SyntheticVncServer.WriteXvncScript(Path.Combine(bench.Work, "synthetic-vnc"));
        await CreateTemplateAsync(bench, "bench-synthetic", "sleep infinity", new() { ["PATH"] = $"{fakeXvncFolder}:{bench.Environment["PATH"]}" });
        var session = await bench.LaunchAsync("bench-synthetic");
        var sessionId = session.GetProperty("id").GetString()!;
        var vncPort = session.GetProperty("platform_metadata").GetProperty("vnc_port").GetInt32();
        var websockifyPort = BenchContext.FreePort();
        using var websockify = BenchProcess.Start("websockify", "websockify", [$"127.0.0.1:{websockifyPort}", $"127.0.0.1:{vncPort}"], bench.Environment, Path.Combine(bench.Work, "websockify.log"));
        await BenchContext.UntilListening(websockifyPort, "websockify");

        TunnelPath[] paths =
        [
            new("(a) raw TCP", () => DirectAsync(vncPort), []),
            new("(b) WebSocket → websockify → TCP", () => WebSocketAsync(new Uri($"ws://127.0.0.1:{websockifyPort}/"), authenticate: true), [websockify]),
            new("(c) WebSocket → API /vnc → agent → TCP", async () => await WebSocketAsync(await bench.VncUrlAsync(sessionId), authenticate: false), [bench.ApiProcess, bench.AgentProcess]),
        ];
        await SinglePathsAsync(bench, paths);
        await PacedStreamsAsync(bench, paths[1], paths[2]);
        await StopAsync(bench, sessionId);

        await RealSessionAsync(bench);
    }

    private static async Task SinglePathsAsync(BenchContext bench, TunnelPath[] paths)
    {
        // STREAMSPACE_BENCH_TUNNEL_MIB makes the throughput runs long enough to attach dotnet-trace to the API and agent.
        var volume = (Environment.GetEnvironmentVariable("STREAMSPACE_BENCH_TUNNEL_MIB") is { } mib ? long.Parse(mib, System.Globalization.CultureInfo.InvariantCulture) : bench.Quick ? 128 : 1024) << 20;
        var roundTrips = bench.Quick ? 2_000 : 10_000;
        var throughput = paths.ToDictionary(p => p, _ => new List<double>());
        var p50 = paths.ToDictionary(p => p, _ => new List<double>());
        var p99 = paths.ToDictionary(p => p, _ => new List<double>());
        var cpu = paths.ToDictionary(p => p, _ => new List<double>());
        for (var rep = 0; rep < bench.Repetitions; rep++)
        {
            foreach (var path in paths)
            {
                await using (var stream = await path.Connect())
                {
                    var command = new byte[9];
                    command[0] = SyntheticVncServer.Stream;
                    BinaryPrimitives.WriteInt64BigEndian(command.AsSpan(1), volume);
                    var cpuBefore = path.Relays.Sum(p => p.CpuSeconds);
                    var clock = Stopwatch.StartNew();
                    await stream.WriteAsync(command);
                    await DrainAsync(stream, volume);
                    throughput[path].Add(volume / clock.Elapsed.TotalSeconds / MB);
                    cpu[path].Add((path.Relays.Sum(p => p.CpuSeconds) - cpuBefore) / (volume / GiB));
                }

                await using (var stream = await path.Connect())
                {
                    await stream.WriteAsync(new[] { SyntheticVncServer.Echo });
                    var message = new byte[64];
                    var answer = new byte[64];
                    var samples = new double[roundTrips];
                    for (var i = -roundTrips / 10; i < roundTrips; i++)
                    {
                        // The first tenth warms the path up (JIT, buffers) and is not counted.
                        var start = Stopwatch.GetTimestamp();
                        await stream.WriteAsync(message);
                        await stream.ReadExactlyAsync(answer);
                        if (i >= 0)
                        {
                            samples[i] = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
                        }
                    }

                    p50[path].Add(Percentile(samples, 50));
                    p99[path].Add(Percentile(samples, 99));
                }
            }
        }

        bench.Line("## 1. Tunnel (synthetic VNC server)");
        bench.Line("");
        bench.Line("| Path | Throughput MB/s | 64-byte round trip p50 / p99 µs | CPU s per GiB (relay processes) |");
        bench.Line("|---|---|---|---|");
        foreach (var path in paths)
        {
            bench.Line($"| {path.Name} | {Figure(throughput[path], "0")} | {Figure(p50[path], "0")} / {Figure(p99[path], "0")} | {(path.Relays.Length == 0 ? "—" : Figure(cpu[path], "0.00"))} |");
        }

        bench.Line("");
        bench.Line($"The server is a stand-in for Xvnc: the bench's own synthetic RFB server, run as the session's `Xvnc` by a bench template " +
            $"that puts it first on the session's PATH, so (c) is a session launched through the API and the agent dials it, answers its VNC " +
            $"authentication and relays as it does for TigerVNC. After the handshake it streams {volume / (1 << 20):N0} MiB per repetition " +
            $"as fast as the path takes them, or echoes {roundTrips:N0} 64-byte messages one at a time (after {roundTrips / 10:N0} not counted). " +
            "CPU counts the relay processes only (websockify for b, API and agent for c), not the server or the client.");
        bench.Line("");

        var (b, c) = (paths[1], paths[2]);
        bench.Target("(c) throughput ≥ websockify's", $"{Median(throughput[c]):0} vs {Median(throughput[b]):0} MB/s", Median(throughput[c]) >= Median(throughput[b]));
        bench.Target("(c) CPU per GiB ≤ 2 × websockify's", $"{Median(cpu[c]):0.00} vs {Median(cpu[b]):0.00} s", Median(cpu[c]) <= 2 * Median(cpu[b]));
        bench.Target("(c) round trip p99 ≤ websockify's, p50 < 300 µs", $"p99 {Median(p99[c]):0} vs {Median(p99[b]):0} µs, p50 {Median(p50[c]):0} µs",
            Median(p99[c]) <= Median(p99[b]) && Median(p50[c]) < 300);
    }

    /// <summary>50 streams at once, each paced by the server at 3 MB/s (a busy 1920×1080 session in Tight encoding).</summary>
    private static async Task PacedStreamsAsync(BenchContext bench, params TunnelPath[] paths)
    {
        const int streams = 50;
        const int rate = 3_000_000;
        var seconds = bench.Quick ? 5 : 15;
        bench.Line($"### {streams} concurrent streams, each paced at {rate / MB:0} MB/s for {seconds} s");
        bench.Line("");
        bench.Line("| Path | Streams holding ≥ 97 % of 3 MB/s | Slowest / median stream MB/s | Relay CPU (cores) | CPU s per GiB | Peak RSS MiB |");
        bench.Line("|---|---|---|---|---|---|");
        var heldThroughTunnel = 0;
        foreach (var path in paths)
        {
            var connections = await Task.WhenAll(Enumerable.Range(0, streams).Select(_ => path.Connect()));
            var peakRss = path.Relays.ToDictionary(p => p, p => p.MemoryMiB);
            using var sampling = new CancellationTokenSource();
            var sampler = Task.Run(async () =>
            {
                while (!sampling.IsCancellationRequested)
                {
                    foreach (var relay in path.Relays)
                    {
                        peakRss[relay] = Math.Max(peakRss[relay], relay.MemoryMiB);
                    }

                    await Task.Delay(250, CancellationToken.None);
                }
            });
            var cpuBefore = path.Relays.Sum(p => p.CpuSeconds);
            var clock = Stopwatch.StartNew();
            var rates = await Task.WhenAll(connections.Select(async stream =>
            {
                var command = new byte[13];
                command[0] = SyntheticVncServer.Paced;
                BinaryPrimitives.WriteInt32BigEndian(command.AsSpan(1), rate);
                BinaryPrimitives.WriteInt64BigEndian(command.AsSpan(5), (long)rate * seconds);
                var started = Stopwatch.StartNew();
                await stream.WriteAsync(command);
                await DrainAsync(stream, (long)rate * seconds);
                return (double)rate * seconds / started.Elapsed.TotalSeconds / MB;
            }));
            var elapsed = clock.Elapsed.TotalSeconds;
            var cpu = path.Relays.Sum(p => p.CpuSeconds) - cpuBefore;
            await sampling.CancelAsync();
            await sampler;
            foreach (var stream in connections)
            {
                await stream.DisposeAsync();
            }

            var held = rates.Count(r => r >= 0.97 * rate / MB);
            heldThroughTunnel = held; // the last path is (c)
            bench.Line($"| {path.Name} | {held} of {streams} | {rates.Min():0.00} / {Median(rates):0.00} | {cpu / elapsed:0.00} | " +
                $"{cpu / ((double)rate * seconds * streams / GiB):0.00} | {string.Join(" + ", peakRss.Select(p => $"{p.Key.Name} {p.Value:0}"))} |");
        }

        bench.Line("");
        bench.Line("A stream holds its rate when its bytes arrive within 3 % of the time the server took to pace them out. " +
            "Peak RSS is sampled every 250 ms during the run.");
        bench.Line("");
        bench.Target($"{streams} paced streams on one agent all hold 3 MB/s", $"{heldThroughTunnel} of {streams} held", heldThroughTunnel == streams);
    }

    /// <summary>Section 2: framebuffer updates a viewer gets from a busy real desktop, asking as noVNC does (incremental, one at a time).</summary>
    private static async Task RealSessionAsync(BenchContext bench)
    {
        await CreateTemplateAsync(bench, "bench-animated", "xterm -geometry 180x55 -e sh -c 'while :; do ls -lR /usr; done'", []);
        var session = await bench.LaunchAsync("bench-animated");
        var sessionId = session.GetProperty("id").GetString()!;
        var vncPort = session.GetProperty("platform_metadata").GetProperty("vnc_port").GetInt32();
        var password = await File.ReadAllTextAsync(Path.Combine(bench.AgentData, "sessions", sessionId, "password"));
        var seconds = bench.Quick ? 3 : 10;

        bench.Line($"## 2. Real session (Xvnc 1280×800 under an xterm running `ls -lR /usr` in a loop, {seconds} s per repetition)");
        bench.Line("");
        bench.Line("| Encoding | Direct RFB MB/s (updates/s) | Through (c) MB/s (updates/s) | (c) ÷ direct |");
        bench.Line("|---|---|---|---|");
        foreach (var (label, encoding) in new[] { ("ZRLE", RfbClient.Zrle), ("Raw", RfbClient.Raw) })
        {
            var direct = new List<(double Rate, double Updates)>();
            var tunnel = new List<(double Rate, double Updates)>();
            for (var rep = 0; rep < bench.Repetitions; rep++)
            {
                direct.Add(await UpdatesAsync(await RfbClient.DirectAsync(vncPort, password), encoding, seconds));
                tunnel.Add(await UpdatesAsync(await RfbClient.WebSocketAsync(await bench.VncUrlAsync(sessionId), null), encoding, seconds));
            }

            List<double> directRates = [.. direct.Select(d => d.Rate)], tunnelRates = [.. tunnel.Select(t => t.Rate)];
            bench.Line($"| {label} | {Figure(directRates, "0.0")} ({Median([.. direct.Select(d => d.Updates)]):0}) | " +
                $"{Figure(tunnelRates, "0.0")} ({Median([.. tunnel.Select(t => t.Updates)]):0}) | {Median(tunnelRates) / Median(directRates):0.00} |");
        }

        bench.Line("");
        bench.Line("Each viewer asks for an incremental update of the whole screen as soon as the last one arrived, as noVNC does; " +
            "the figures count the FramebufferUpdate bytes on the wire. Tight, noVNC's default, is not decoded by the bench client.");
        bench.Line("");
        await StopAsync(bench, sessionId);
    }

    /// <summary>Stops a session and waits until its processes are gone, so none outlives the run.</summary>
    private static async Task StopAsync(BenchContext bench, string sessionId)
    {
        await bench.Http.DeleteAsync($"/api/v1/sessions/{sessionId}");
        await BenchContext.Until(async () =>
            (await bench.Http.GetFromJsonAsync<JsonElement>($"/api/v1/sessions/{sessionId}")).GetProperty("state").GetString() is "stopped" or "failed",
            $"session {sessionId} to stop");
    }

    private static async Task<(double Rate, double Updates)> UpdatesAsync(RfbClient client, int encoding, int seconds)
    {
        await using var _ = client;
        await client.UseEncodingsAsync(encoding, RfbClient.Raw);
        await client.FullScreenAsync();
        long bytes = 0;
        var updates = 0;
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed.TotalSeconds < seconds)
        {
            bytes += await client.IncrementalAsync();
            updates++;
        }

        return (bytes / clock.Elapsed.TotalSeconds / MB, updates / clock.Elapsed.TotalSeconds);
    }

    private static async Task CreateTemplateAsync(BenchContext bench, string name, string command, Dictionary<string, string> env)
    {
        using var created = await bench.Http.PostAsJsonAsync("/api/v1/templates", new Dictionary<string, object>
        {
            ["name"] = name,
            ["display_name"] = name,
            ["command"] = command,
            ["env"] = env,
            ["idle_timeout"] = "8h",
        });
        if (!created.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"could not create template {name}: {(int)created.StatusCode} {await created.Content.ReadAsStringAsync()}");
        }
    }

    private static async Task DrainAsync(Stream stream, long count)
    {
        var buffer = new byte[256 * 1024];
        for (var left = count; left > 0;)
        {
            var read = await stream.ReadAsync(buffer.AsMemory(0, (int)Math.Min(left, buffer.Length)));
            if (read == 0)
            {
                throw new EndOfStreamException($"the path closed with {left:N0} bytes still to come");
            }

            left -= read;
        }
    }

    /// <summary>Path (a): the client dials the server and answers its VNC authentication itself.</summary>
    private static async Task<Stream> DirectAsync(int port)
    {
        var tcp = new TcpClient { NoDelay = true };
        await tcp.ConnectAsync("127.0.0.1", port);
        var stream = tcp.GetStream();
        await RfbBridge.AuthenticateToServerAsync(stream, "bench", CancellationToken.None);
        return stream;
    }

    /// <summary>Paths (b) and (c): a binary WebSocket; through websockify the client authenticates, through /vnc the agent has.</summary>
    private static async Task<Stream> WebSocketAsync(Uri url, bool authenticate)
    {
        var socket = new ClientWebSocket();
        socket.Options.AddSubProtocol("binary");
        await socket.ConnectAsync(url, CancellationToken.None);
        var stream = new WebSocketStream(socket);
        if (authenticate)
        {
            await RfbBridge.AuthenticateToServerAsync(stream, "bench", CancellationToken.None);
        }
        else
        {
            await RfbClient.NoneAuthAsync(stream);
        }

        return stream;
    }
}
