using System.Buffers.Binary;
using System.Diagnostics;
using System.Text.Json;

namespace StreamSpace.Bench;

/// <summary>
/// The paced viewers' receivers. The bench starts several processes of itself (<c>--paced-client SPEC</c>), each
/// with some of the viewers, so that one process reading 50 streams is not what limits the figure. A process connects
/// its viewers, says <c>ready</c>, waits for <c>go</c> on its input (so every process starts at once), asks each
/// stream's server for its paced bytes, and prints one <c>result</c> line: each viewer's rate and its own CPU seconds.
/// </summary>
public static class PacedClient
{
    private const double MB = 1e6;

    /// <summary>Where a viewer connects: a WebSocket URL, and whether the viewer itself answers VNC authentication (websockify) or the agent did.</summary>
    public sealed record Target(string Url, bool Authenticate);

    private sealed record Specification(Target[] Targets, int Rate, int Seconds);

    private sealed record Result(double[] Rates, double CpuSeconds);

    public sealed record Run(double[] Rates, double Seconds, double RelayCpu, double ReceiverCpu, double? ServerCpu, Dictionary<string, double> PeakRss);

    /// <summary>
    /// The child's side. Each viewer has a thread of its own with a blocking <see cref="RawWebSocket"/>: no async
    /// continuations, no thread-pool hand-offs, one receive per up to 256 KiB, so the receivers cost far less than the
    /// relay they measure.
    /// </summary>
    public static async Task<int> RunAsync(string specificationFile)
    {
        var specification = JsonSerializer.Deserialize<Specification>(await File.ReadAllTextAsync(specificationFile), TunnelBench.Json)!;
        var count = (long)specification.Rate * specification.Seconds;
        var drainLimit = TimeSpan.FromSeconds(specification.Seconds * 4 + 30);
        using var connected = new CountdownEvent(specification.Targets.Length);
        using var go = new ManualResetEventSlim();
        var rates = new double[specification.Targets.Length];
        var failures = new System.Collections.Concurrent.ConcurrentQueue<Exception>();
        var threads = specification.Targets.Select((target, i) => new Thread(() =>
        {
            RawWebSocket? viewer = null;
            try
            {
                viewer = RawWebSocket.Connect(new Uri(target.Url), TimeSpan.FromSeconds(30));
                // The RFB handshake helpers are async, but every read and write of a RawWebSocket completes at once.
                (target.Authenticate
                    ? StreamSpace.Agent.Tunnel.RfbBridge.AuthenticateToServerAsync(viewer, "bench", CancellationToken.None)
                    : RfbClient.NoneAuthAsync(viewer)).GetAwaiter().GetResult();
            }
            catch (Exception e)
            {
                failures.Enqueue(e);
                viewer?.Dispose();
                viewer = null;
            }

            connected.Signal();
            if (viewer is null || !go.Wait(TimeSpan.FromSeconds(150)))
            {
                viewer?.Dispose();
                return;
            }

            using (viewer)
            {
                try
                {
                    var command = new byte[13];
                    command[0] = SyntheticVncServer.Paced;
                    BinaryPrimitives.WriteInt32BigEndian(command.AsSpan(1), specification.Rate);
                    BinaryPrimitives.WriteInt64BigEndian(command.AsSpan(5), count);
                    var started = Stopwatch.StartNew();
                    viewer.Write(command);
                    viewer.Drain(count, drainLimit, $"viewer {i}");
                    rates[i] = count / started.Elapsed.TotalSeconds / MB;
                }
                catch (Exception e)
                {
                    failures.Enqueue(e);
                }
            }
        })
        { IsBackground = true, Name = $"viewer {i}" }).ToArray();
        foreach (var thread in threads)
        {
            thread.Start();
        }

        if (!connected.Wait(TimeSpan.FromSeconds(30)) || !failures.IsEmpty)
        {
            Console.WriteLine(failures.TryPeek(out var failure) ? $"error {failure.GetType().Name}: {failure.Message}" : "error the viewers did not connect within 30 s");
            return 1;
        }

        Console.WriteLine("ready");
        if (await Console.In.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(120)) != "go")
        {
            Console.WriteLine("error the bench did not say go");
            return 1;
        }

        // The receivers' CPU while the streams flow, not their start-up and connects.
        var cpuAtStart = Process.GetCurrentProcess().TotalProcessorTime;
        go.Set();
        var deadline = DateTime.UtcNow + drainLimit + TimeSpan.FromSeconds(5);
        foreach (var thread in threads)
        {
            if (!thread.Join(Max(deadline - DateTime.UtcNow, TimeSpan.Zero)))
            {
                Console.WriteLine($"error {thread.Name} was still receiving after {drainLimit.TotalSeconds:0} s");
                return 1;
            }
        }

        if (failures.TryPeek(out var error))
        {
            Console.WriteLine($"error {error.GetType().Name}: {error.Message}");
            return 1;
        }

        Console.WriteLine("result " + JsonSerializer.Serialize(new Result(rates, (Process.GetCurrentProcess().TotalProcessorTime - cpuAtStart).TotalSeconds), TunnelBench.Json));
        return 0;
    }

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

    /// <summary>The bench's side: starts one process per group of targets, starts them together, gathers their figures.</summary>
    public static async Task<Run> RunAllAsync(BenchContext bench, string pathName, Target[][] groups, int rate, int seconds, BenchProcess[] relays, int? serverPid)
    {
        var children = new List<Process>();
        try
        {
            foreach (var (group, index) in groups.Select((g, i) => (g, i)))
            {
                var file = Path.Combine(bench.Work, $"paced-{Guid.NewGuid():N}.json");
                await File.WriteAllTextAsync(file, JsonSerializer.Serialize(new Specification(group, rate, seconds), TunnelBench.Json));
                var start = new ProcessStartInfo("dotnet", [typeof(PacedClient).Assembly.Location, "--paced-client", file])
                {
                    RedirectStandardInput = true,
                    RedirectStandardOutput = true,
                    RedirectStandardError = true,
                };
                children.Add(Process.Start(start)!);
            }

            foreach (var child in children)
            {
                var line = await BenchContext.Within(child.StandardOutput.ReadLineAsync(), TimeSpan.FromSeconds(60), $"{pathName}: a receiving process to connect its viewers");
                if (line != "ready")
                {
                    throw new InvalidOperationException($"{pathName}: a receiving process could not connect its viewers: {line ?? await child.StandardError.ReadToEndAsync()}");
                }
            }

            var peakRss = relays.ToDictionary(p => p.Name, p => p.MemoryMiB);
            using var sampling = new CancellationTokenSource();
            var sampler = Task.Run(async () =>
            {
                while (!sampling.IsCancellationRequested)
                {
                    foreach (var relay in relays)
                    {
                        peakRss[relay.Name] = Math.Max(peakRss[relay.Name], relay.MemoryMiB);
                    }

                    await Task.Delay(250, CancellationToken.None);
                }
            });
            var relayBefore = relays.Sum(p => p.CpuSeconds);
            var serverBefore = ServerCpu(serverPid);
            var clock = Stopwatch.StartNew();
            foreach (var child in children)
            {
                await child.StandardInput.WriteLineAsync("go");
                await child.StandardInput.FlushAsync();
            }

            var results = new List<Result>();
            foreach (var child in children)
            {
                var line = await BenchContext.Within(child.StandardOutput.ReadLineAsync(), TimeSpan.FromSeconds(seconds * 4 + 60), $"{pathName}: a receiving process's result");
                if (line is null || !line.StartsWith("result ", StringComparison.Ordinal))
                {
                    throw new InvalidOperationException($"{pathName}: a receiving process failed: {line ?? await child.StandardError.ReadToEndAsync()}");
                }

                results.Add(JsonSerializer.Deserialize<Result>(line["result ".Length..], TunnelBench.Json)!);
            }

            var elapsed = clock.Elapsed.TotalSeconds;
            var relayCpu = relays.Sum(p => p.CpuSeconds) - relayBefore;
            var serverCpu = ServerCpu(serverPid) - serverBefore;
            await sampling.CancelAsync();
            await sampler;
            return new Run([.. results.SelectMany(r => r.Rates)], elapsed, relayCpu, results.Sum(r => r.CpuSeconds), serverCpu, peakRss);
        }
        finally
        {
            foreach (var child in children)
            {
                if (!child.WaitForExit(5_000))
                {
                    child.Kill();
                }

                child.Dispose();
            }
        }
    }

    private static double? ServerCpu(int? pid)
    {
        try
        {
            return pid is { } id ? BenchProcess.CpuSecondsOf(id) : null;
        }
        catch (IOException)
        {
            return null;
        }
    }
}
