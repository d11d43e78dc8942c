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

    /// <summary>The child's side.</summary>
    public static async Task<int> RunAsync(string specificationFile)
    {
        var specification = JsonSerializer.Deserialize<Specification>(await File.ReadAllTextAsync(specificationFile), TunnelBench.Json)!;
        try
        {
            var streams = await Task.WhenAll(specification.Targets.Select(t => TunnelBench.WebSocketAsync(new Uri(t.Url), t.Authenticate)))
                .WaitAsync(TimeSpan.FromSeconds(30));
            Console.WriteLine("ready");
            if (await Console.In.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(120)) != "go")
            {
                throw new InvalidOperationException("the bench did not say go");
            }

            // The receivers' CPU while the streams flow, not their start-up and connects.
            var cpuAtStart = Process.GetCurrentProcess().TotalProcessorTime;
            var count = (long)specification.Rate * specification.Seconds;
            var rates = await Task.WhenAll(streams.Select(async (stream, i) =>
            {
                var command = new byte[13];
                command[0] = SyntheticVncServer.Paced;
                BinaryPrimitives.WriteInt32BigEndian(command.AsSpan(1), specification.Rate);
                BinaryPrimitives.WriteInt64BigEndian(command.AsSpan(5), count);
                var started = Stopwatch.StartNew();
                await stream.WriteAsync(command);
                await TunnelBench.DrainAsync(stream, count, TimeSpan.FromSeconds(specification.Seconds * 4 + 30), $"viewer {i}");
                return count / started.Elapsed.TotalSeconds / MB;
            }));
            foreach (var stream in streams)
            {
                await stream.DisposeAsync();
            }

            Console.WriteLine("result " + JsonSerializer.Serialize(new Result(rates, (Process.GetCurrentProcess().TotalProcessorTime - cpuAtStart).TotalSeconds), TunnelBench.Json));
            return 0;
        }
        catch (Exception e)
        {
            Console.WriteLine($"error {e.GetType().Name}: {e.Message}");
            return 1;
        }
    }

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
