using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text.Json;
using StreamSpace.Agent.Tunnel;
using static StreamSpace.Bench.Figures;

namespace StreamSpace.Bench;

/// <summary>
/// The VNC tunnel against the synthetic VNC server: (a) raw TCP, (b) websockify and (c) the browser's path through the
/// API's /vnc and the agent, with (c)'s variants (the multiplexed tunnel, and splice(2) instead of the user-space copy) each
/// on an agent of its own started with that setting. The repetitions of every path are interleaved, so the shared
/// machine's noise hits all alike. Then 50 paced viewers, received by several client processes, first through
/// websockify (which shows the harness can hold them) and then through (c).
/// </summary>
public static partial class TunnelBench
{
    private const double MB = 1e6;
    private const double GiB = 1024.0 * 1024 * 1024;
    private const string SyntheticTemplate = "bench-synthetic";

    /// <summary>
    /// A way to the synthetic server. Relays are the processes on the path whose CPU is counted; Beside, a stand-in for
    /// someone else's relay on the path (the fake API server's port-forward), whose CPU is reported apart. A row for
    /// information reports its failure in the table instead of failing the section.
    /// </summary>
    private sealed record TunnelPath(string Name, Func<Task<Stream>> Connect, Func<Task<PacedClient.Target>> Target, BenchProcess[] Relays, BenchAgent? Agent,
        BenchProcess? Beside = null, bool ForInformation = false);

    public static Task RunAsync(BenchContext bench) => RunAsync(bench, singlePaths: true);

    /// <summary>Only the 50 paced viewers through (b) and (c): the section <c>tunnel-paced</c>.</summary>
    public static Task PacedOnlyAsync(BenchContext bench) => RunAsync(bench, singlePaths: false);

    private static async Task RunAsync(BenchContext bench, bool singlePaths)
    {
        // Where a session's account can run it: with LOCAL_ISOLATION=accounts (the agent runs as root) sessions run as
        // an account of their own, which cannot enter the run's folder and would silently find the real Xvnc instead.
        var fakeXvncFolder = SyntheticVncServer.WriteXvncScript(BenchAgent.SessionReadableFolder("synthetic-vnc"));
        await bench.CreateTemplateAsync(SyntheticTemplate, "sleep infinity", new() { ["PATH"] = $"{fakeXvncFolder}:{bench.Environment["PATH"]}" });

        // Each variant of (c) runs on an agent of its own with its setting; the default path is the main agent's.
        var mux = singlePaths ? await bench.StartAgentAsync("bench-agent-mux", new Dictionary<string, string> { ["AGENT_DATA_PATH"] = "mux" }) : null;
        var splice = singlePaths ? await bench.StartAgentAsync("bench-agent-splice", new Dictionary<string, string> { ["AGENT_SPLICE"] = "on" }) : null;
        var sessions = new List<string>();
        KubernetesRig? kubernetes = null;
        async Task<(string Id, int Port)> SessionOnAsync(BenchAgent agent)
        {
            var session = await bench.LaunchOnAsync(agent, SyntheticTemplate);
            var id = session.GetProperty("id").GetString()!;
            sessions.Add(id);
            return (id, session.GetProperty("platform_metadata").GetProperty("vnc_port").GetInt32());
        }

        try
        {
            var (mainSession, vncPort) = await SessionOnAsync(bench.Agent);
            var websockifyPort = BenchContext.FreePort();
            using var websockify = BenchProcess.Start("websockify", "websockify", [$"127.0.0.1:{websockifyPort}", $"127.0.0.1:{vncPort}"], bench.Environment, Path.Combine(bench.Work, "websockify.log"), forksPerConnection: true);
            await BenchContext.UntilListening(websockifyPort, "websockify to listen");
            var websockifyUrl = new Uri($"ws://127.0.0.1:{websockifyPort}/");

            TunnelPath Through(string name, string sessionId, BenchAgent agent) => new(name,
                async () => await WebSocketAsync(await bench.VncUrlAsync(sessionId), authenticate: false),
                async () => new PacedClient.Target((await bench.VncUrlAsync(sessionId)).ToString(), Authenticate: false),
                [bench.ApiProcess, agent.Process], agent);

            var websockifyPath = new TunnelPath("(b) WebSocket → websockify → TCP", () => WebSocketAsync(websockifyUrl, authenticate: true),
                () => Task.FromResult(new PacedClient.Target(websockifyUrl.ToString(), Authenticate: true)), [websockify], null);
            var apiPath = Through("(c) WebSocket → API /vnc → agent → TCP", mainSession, bench.Agent);
            if (mux is not null && splice is not null)
            {
                var (muxSession, _) = await SessionOnAsync(mux);
                var (spliceSession, _) = await SessionOnAsync(splice);
                List<TunnelPath> paths =
                [
                    new("(a) raw TCP", () => DirectAsync(vncPort), () => throw new NotSupportedException(), [], null),
                    websockifyPath,
                    apiPath,
                    Through("(c-mux) as (c), agent with AGENT_DATA_PATH=mux", muxSession, mux),
                    Through("(c-splice) as (c), agent with AGENT_SPLICE=on", spliceSession, splice),
                ];
                var notMeasured = new List<string>();
                const string podIpRow = "(c-k8s-podip) as (c), kubernetes agent with SESSION_TUNNEL=podip";
                const string portForwardRow = "(c-k8s-portforward) as (c), kubernetes agent with SESSION_TUNNEL=portforward, through the fake API server";
                try
                {
                    var rig = await StartKubernetesAsync(bench, started => kubernetes = started);
                    foreach (var (agent, row) in rig.Agents.Zip([podIpRow, portForwardRow]))
                    {
                        try
                        {
                            var session = (await bench.LaunchOnAsync(agent, KubernetesTemplate)).GetProperty("id").GetString()!;
                            sessions.Add(session);
                            paths.Add(Through(row, session, agent) with { Beside = row == portForwardRow ? rig.Cluster : null, ForInformation = true });
                        }
                        catch (Exception e) when (e is not OutOfMemoryException)
                        {
                            notMeasured.Add(NotMeasured(row, e));
                        }
                    }
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    notMeasured.Add(NotMeasured("(c-k8s-podip) and (c-k8s-portforward)", e));
                }

                await SinglePathsAsync(bench, [.. paths], notMeasured);
            }

            await PacedStreamsAsync(bench, SyntheticServerPid(vncPort), websockifyPath, apiPath);
        }
        finally
        {
            try
            {
                foreach (var id in sessions)
                {
                    await bench.StopAsync(id);
                }

                // Later sections measure the main agent alone.
                foreach (var extra in new[] { mux, splice }.OfType<BenchAgent>().Concat(kubernetes?.Agents ?? []))
                {
                    await bench.StopAgentAsync(extra);
                }
            }
            finally
            {
                // The fake cluster and its pod are no agent's: nothing else would stop them if a session's stop failed.
                kubernetes?.Dispose();
            }
        }
    }

    private static async Task SinglePathsAsync(BenchContext bench, TunnelPath[] paths, IReadOnlyList<string> notMeasured)
    {
        // STREAMSPACE_BENCH_TUNNEL_MIB makes the throughput runs long enough to attach dotnet-trace to the API and agent.
        var volume = (Environment.GetEnvironmentVariable("STREAMSPACE_BENCH_TUNNEL_MIB") is { } mib ? long.Parse(mib, CultureInfo.InvariantCulture) : bench.Quick ? 128 : 1024) << 20;
        var roundTrips = bench.Quick ? 2_000 : 10_000;
        var throughput = paths.ToDictionary(p => p, _ => new List<double>());
        var p50 = paths.ToDictionary(p => p, _ => new List<double>());
        var p99 = paths.ToDictionary(p => p, _ => new List<double>());
        var cpu = paths.ToDictionary(p => p, _ => new List<double>());
        var reported = paths.ToDictionary(p => p, _ => (string?)null);
        var beside = paths.ToDictionary(p => p, _ => new List<double>());
        // Each relay process's own share, so the goals' misses can be put per relay beside websockify's one relay.
        var perProcess = paths.ToDictionary(p => p, p => p.Relays.Select(_ => new List<double>()).ToArray());
        var failed = new Dictionary<TunnelPath, string>();
        for (var rep = 0; rep < bench.Repetitions; rep++)
        {
            foreach (var path in paths.Where(p => !failed.ContainsKey(p)))
            {
                try
                {
                    await MeasureAsync(path);
                }
                catch (Exception e) when (path.ForInformation && e is not OutOfMemoryException)
                {
                    failed[path] = $"{e.GetType().Name}: {e.Message.Split('\n')[0]}";
                }
            }
        }

        async Task MeasureAsync(TunnelPath path)
        {
                await using (var stream = await BenchContext.Within(path.Connect(), TimeSpan.FromSeconds(15), $"{path.Name}: the connection and RFB handshake"))
                {
                    var command = new byte[9];
                    command[0] = SyntheticVncServer.Stream;
                    BinaryPrimitives.WriteInt64BigEndian(command.AsSpan(1), volume);
                    var processesBefore = path.Relays.Select(p => p.CpuSeconds).ToArray();
                    var cpuBefore = processesBefore.Sum();
                    var besideBefore = path.Beside?.CpuSeconds ?? 0;
                    var clock = Stopwatch.StartNew();
                    await stream.WriteAsync(command);
                    // At 20 MB/s a path is broken, not slow.
                    await DrainAsync(stream, volume, TimeSpan.FromSeconds(10 + volume / 20e6), path.Name);
                    throughput[path].Add(volume / clock.Elapsed.TotalSeconds / MB);
                    cpu[path].Add((path.Relays.Sum(p => p.CpuSeconds) - cpuBefore) / (volume / GiB));
                    for (var i = 0; i < path.Relays.Length; i++)
                    {
                        perProcess[path][i].Add((path.Relays[i].CpuSeconds - processesBefore[i]) / (volume / GiB));
                    }

                    beside[path].Add(((path.Beside?.CpuSeconds ?? 0) - besideBefore) / (volume / GiB));
                }

                await using (var stream = await BenchContext.Within(path.Connect(), TimeSpan.FromSeconds(15), $"{path.Name}: the connection and RFB handshake"))
                {
                    await stream.WriteAsync(new[] { SyntheticVncServer.Echo });
                    var samples = await BenchContext.Within(RoundTripsAsync(stream, roundTrips), TimeSpan.FromSeconds(60), $"{path.Name}: {roundTrips:N0} round trips");
                    p50[path].Add(Percentile(samples, 50));
                    p99[path].Add(Percentile(samples, 99));
                    if (path.Agent is not null)
                    {
                        // While this viewer is open, the agent's own account of its path (tunnel v2 agents count it).
                        reported[path] ??= await path.Agent.ReportedPathAsync();
                    }
                }
        }

        bench.Line("## 1. Tunnel (synthetic VNC server)");
        bench.Line("");
        bench.Line("| Path | Throughput MB/s | 64-byte round trip p50 / p99 µs | CPU s per GiB (every StreamSpace process on the path) | Path the agent reports |");
        bench.Line("|---|---|---|---|---|");
        foreach (var path in paths)
        {
            if (failed.TryGetValue(path, out var failure))
            {
                bench.Line($"| {path.Name} | not measured: {failure.Replace('|', '/')} | | | |");
                continue;
            }

            bench.Line($"| {path.Name} | {Figure(throughput[path], "0")} | {Figure(p50[path], "0")} / {Figure(p99[path], "0")} | " +
                $"{(path.Relays.Length == 0 ? "—" : Figure(cpu[path], "0.00"))} | {(path.Agent is null ? "—" : reported[path] ?? "not reported")} |");
        }

        bench.Line("");
        bench.Line($"The server is a stand-in for Xvnc: the bench's own synthetic RFB server, run as the session's `Xvnc` by a bench template " +
            $"that puts it first on the session's PATH, so (c) is a session launched through the API and the agent dials it, answers its VNC " +
            $"authentication and relays as it does for TigerVNC. After the handshake it streams {volume / (1 << 20):N0} MiB per repetition " +
            $"as fast as the path takes them, or echoes {roundTrips:N0} 64-byte messages one at a time (after {roundTrips / 10:N0} not counted). " +
            "CPU counts the relay processes only (websockify for b; the API and that path's agent for c), not the server or the client. " +
            "Each variant of (c) has its own agent process, started with the setting named; \"not reported\" means the agent serves no " +
            "`streamspace_agent_data_connections` metric, i.e. it predates tunnel v2 and every (c) row is the multiplexed tunnel.");
        bench.Line("");
        if (paths.Any(p => p.ForInformation) || notMeasured.Count > 0)
        {
            bench.Line("The (c-k8s-…) rows are for information: an agent with PLATFORM=kubernetes against the tests' fake Kubernetes API server " +
                "(run as a process of its own, playing the kubelet), whose session pod is the synthetic server listening on a loopback address " +
                "of its own as the pod IP. By pod IP the agent dials that address itself; by port-forward it goes through the fake API server's " +
                "pods/portforward WebSocket (v4.channel.k8s.io), which relays in 64 KiB messages. Their CPU column counts the API and the agent; " +
                "the fake API server's relay is a stand-in for kube-apiserver and the kubelet, whose real costs differ, so it is given apart.");
            foreach (var path in paths.Where(p => p.Beside is not null && !failed.ContainsKey(p)))
            {
                bench.Line($"- {path.Name}: the fake API server's port-forward relay spent {Figure(beside[path], "0.00")} s per GiB more.");
            }

            foreach (var reason in notMeasured)
            {
                bench.Line($"- {reason}");
            }

            bench.Line("");
        }

        var (a, b, c) = (paths[0], paths[1], paths[2]);
        double M(Dictionary<TunnelPath, List<double>> values, TunnelPath path) => Median(values[path]);
        // Path (c) has two relays by design (the agent dials out, so the API cannot reach the VNC server itself);
        // websockify is one. Per relay is the like-for-like comparison, and what the goals' misses come down to.
        var shares = string.Join(", ", c.Relays.Select((process, i) => $"{process.Name} {Median(perProcess[c][i]):0.00}"));
        bench.Line($"Per relay: path (c) crosses two relays where (b) crosses one. Its CPU per GiB splits as {shares} s, against websockify's " +
            $"{M(cpu, b):0.00} s for its one relay; its 64-byte round trip adds {M(p50, c) - M(p50, a):0} µs p50 to raw TCP's over two relays " +
            $"({(M(p50, c) - M(p50, a)) / 2:0} µs each), against websockify's {M(p50, b) - M(p50, a):0} µs over one.");
        bench.Line("");
        var throughputRatio = M(throughput, c) / M(throughput, b);
        bench.SetGoal(Goal.Throughput, $"{M(throughput, c):0} MB/s", $"websockify {M(throughput, b):0} MB/s", $"{throughputRatio:0.00}×", throughputRatio >= 1.0);
        var cpuRatio = M(cpu, c) / M(cpu, b);
        bench.SetGoal(Goal.CpuPerGiB, $"{M(cpu, c):0.00} s/GiB", $"websockify {M(cpu, b):0.00} s/GiB", $"{cpuRatio:0.00}×", cpuRatio <= 1.5);
        var (p50Ratio, p99Ratio) = (M(p50, c) / M(p50, b), M(p99, c) / M(p99, b));
        bench.SetGoal(Goal.RoundTrip, $"p50 {M(p50, c):0} / p99 {M(p99, c):0} µs", $"websockify {M(p50, b):0} / {M(p99, b):0} µs",
            $"p50 {p50Ratio:0.00}×, p99 {p99Ratio:0.00}×", p50Ratio <= 1.2 && p99Ratio <= 1.0);
    }

    private static async Task<double[]> RoundTripsAsync(Stream stream, int roundTrips)
    {
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

        return samples;
    }

    /// <summary>
    /// 50 viewers at once, each paced by the server at 3 MB/s (a busy 1920×1080 session in Tight encoding) in 40 ms
    /// frames, received by 5 client processes of 10 blocking raw-socket viewers each so that the receivers are not the limit.
    /// </summary>
    private static async Task PacedStreamsAsync(BenchContext bench, int? serverPid, params TunnelPath[] paths)
    {
        const int streams = 50;
        const int clients = 5;
        const int rate = 3_000_000;
        var seconds = bench.Quick ? 5 : 15;
        bench.Line($"### {streams} viewers, each paced at {rate / MB:0} MB/s in {SyntheticVncServer.FrameInterval.TotalMilliseconds:0} ms frames for {seconds} s, received by {clients} client processes");
        bench.Line("");
        bench.Line("| Path | Viewers holding ≥ 97 % of 3 MB/s | Slowest / median viewer MB/s | Relay CPU (cores) | Relay CPU s per GiB | Peak RSS MiB | Harness CPU (cores): receivers + server |");
        bench.Line("|---|---|---|---|---|---|---|");
        var held = new Dictionary<TunnelPath, int>();
        var relayCores = new Dictionary<TunnelPath, double>();
        foreach (var path in paths)
        {
            var targets = new List<PacedClient.Target>();
            for (var i = 0; i < streams; i++)
            {
                targets.Add(await path.Target());
            }

            var run = await PacedClient.RunAllAsync(bench, path.Name, [.. targets.Chunk(streams / clients)], rate, seconds, path.Relays, serverPid);
            held[path] = run.Rates.Count(r => r >= 0.97 * rate / MB);
            relayCores[path] = run.RelayCpu / run.Seconds;
            bench.Line($"| {path.Name} | {held[path]} of {streams} | {run.Rates.Min():0.00} / {Median(run.Rates):0.00} | {relayCores[path]:0.00} | " +
                $"{run.RelayCpu / ((double)rate * seconds * streams / GiB):0.00} | {string.Join(" + ", run.PeakRss.Select(p => $"{p.Key} {p.Value:0}"))} | " +
                $"{run.ReceiverCpu / run.Seconds:0.00} + {(run.ServerCpu is { } server ? $"{server / run.Seconds:0.00}" : "?")} |");
        }

        bench.Line("");
        bench.Line("A viewer holds its rate when its bytes arrive within 3 % of the time the server took to pace them out (its rate counts " +
            "from the viewer's request to its last byte). Every viewer connects first; then all are told to start at once. The server " +
            $"writes each viewer's next {SyntheticVncServer.FrameInterval.TotalMilliseconds:0} ms of bytes in one go, as a VNC server writes a " +
            "framebuffer update; each viewer reads on a thread of its own with a blocking socket and a 256 KiB buffer, parsing WebSocket " +
            "frames in place. Peak RSS is sampled every 250 ms. The harness is the receiving " +
            "processes and the synthetic server (one process serving every viewer), on the same 2 cores as the relays: websockify's " +
            "row shows whether the harness can hold all 50; only then does a shortfall of (c) belong to (c).");
        bench.Line("");
        var (b, c) = (paths[0], paths[1]);
        bench.SetGoal(Goal.PacedStreams, $"{held[c]} of {streams} held, relay {relayCores[c]:0.00} cores",
            $"websockify {held[b]} of {streams}, {relayCores[b]:0.00} cores", $"{relayCores[c] / relayCores[b]:0.00}× websockify's CPU",
            held[c] == streams && relayCores[c] < 1.0);
        if (held[b] < streams)
        {
            bench.Note($"The 50 paced viewers: websockify held only {held[b]} of {streams}, so on this machine the harness, not the relay, " +
                "limits that figure; the paced-viewer goal is not judged on it.");
        }
    }

    /// <summary>The synthetic server's process (the session's fake Xvnc), whose CPU is the harness's, not a relay's.</summary>
    private static int? SyntheticServerPid(int port)
    {
        foreach (var folder in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(folder), out var pid))
            {
                try
                {
                    var arguments = File.ReadAllText(Path.Combine(folder, "cmdline")).Split('\0');
                    var at = Array.IndexOf(arguments, "--synthetic-vnc");
                    if (at >= 0 && at + 1 < arguments.Length && arguments[at + 1] == port.ToString(CultureInfo.InvariantCulture))
                    {
                        return pid;
                    }
                }
                catch (IOException)
                {
                    // Gone meanwhile.
                }
            }
        }

        return null;
    }

    public static async Task DrainAsync(Stream stream, long count, TimeSpan limit, string what)
    {
        using var timeout = new CancellationTokenSource(limit);
        var buffer = new byte[256 * 1024];
        try
        {
            for (var left = count; left > 0;)
            {
                var read = await stream.ReadAsync(buffer.AsMemory(0, (int)Math.Min(left, buffer.Length)), timeout.Token);
                if (read == 0)
                {
                    throw new EndOfStreamException($"{what}: the path closed with {left:N0} bytes still to come");
                }

                left -= read;
            }
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested)
        {
            throw new TimeoutException($"{what}: {count:N0} bytes did not arrive within {limit.TotalSeconds:0} s");
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
    public static async Task<Stream> WebSocketAsync(Uri url, bool authenticate)
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

    internal static JsonSerializerOptions Json { get; } = new(JsonSerializerDefaults.Web);
}
