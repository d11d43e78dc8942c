using System.Globalization;
using StreamSpace.Bench.Agents;

// Simulated agents for the agent-hub benchmark: one light WebSocket client per registered agent, speaking the real
// protocol (hello → welcome → heartbeats; commands are acknowledged and answered), reconnecting with the real agent's
// backoff. Prints a status line every 500 ms for the bench to read; runs until it is stopped (Ctrl+C) or killed.
//
//   StreamSpace.Bench.Agents --url ws://127.0.0.1:8000/agent/ws --keys FILE [--skip N] [--count N] [--heartbeat 30] [--connect-rate 1000]
//
// FILE holds "<agent id> <agent key>" lines, as registered through POST /api/v1/agents.
var options = Arguments.Parse(args);
var url = new Uri(options.Required("--url"));
var credentials = File.ReadLines(options.Required("--keys"))
    .Select(line => line.Split(' ', 2))
    .Skip(int.Parse(options.Optional("--skip") ?? "0", CultureInfo.InvariantCulture))
    .Take(int.Parse(options.Optional("--count") ?? int.MaxValue.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture))
    .Select(parts => (Id: parts[0], Key: parts[1]))
    .ToList();
var heartbeat = TimeSpan.FromSeconds(double.Parse(options.Optional("--heartbeat") ?? "30", CultureInfo.InvariantCulture));
var connectRate = int.Parse(options.Optional("--connect-rate") ?? "1000", CultureInfo.InvariantCulture);

using var stopping = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    stopping.Cancel();
};

var counters = new SimulationCounters();
// One handler for every socket: a ClientWebSocket otherwise builds its own handler per connect.
using var invoker = new HttpMessageInvoker(new SocketsHttpHandler { PooledConnectionLifetime = Timeout.InfiniteTimeSpan });
var agents = new List<Task>(credentials.Count);
var reporter = counters.ReportAsync(Console.Out, stopping.Token);
var pace = TimeSpan.FromSeconds(1.0 / connectRate);
var started = System.Diagnostics.Stopwatch.StartNew();
for (var i = 0; i < credentials.Count && !stopping.IsCancellationRequested; i++)
{
    var agent = new SimulatedAgent(credentials[i].Id, credentials[i].Key, url, heartbeat, invoker, counters);
    agents.Add(Task.Run(() => agent.RunAsync(stopping.Token)));

    // Paced, so the first connect of thousands is a ramp, not the storm that a restart is.
    var due = pace * (i + 1) - started.Elapsed;
    if (due > TimeSpan.FromMilliseconds(1))
    {
        await Task.Delay(due);
    }
}

await Task.WhenAll(agents);
await stopping.CancelAsync();
await reporter;
return 0;
