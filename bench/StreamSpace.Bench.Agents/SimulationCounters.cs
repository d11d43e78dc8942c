using System.Globalization;

namespace StreamSpace.Bench.Agents;

/// <summary>What all simulated agents did so far; the bench reads it from the status lines.</summary>
public sealed class SimulationCounters
{
    private long welcomed;
    private long connects;
    private long heartbeats;
    private long commands;
    private long failures;

    /// <summary>Agents whose hello was answered with welcome and whose connection is still open.</summary>
    public long Welcomed => Interlocked.Read(ref welcomed);

    public void Welcome() => Interlocked.Increment(ref welcomed);

    public void Lost() => Interlocked.Decrement(ref welcomed);

    public void Connect() => Interlocked.Increment(ref connects);

    public void Heartbeat() => Interlocked.Increment(ref heartbeats);

    public void Command() => Interlocked.Increment(ref commands);

    public void Failure() => Interlocked.Increment(ref failures);

    public async Task ReportAsync(TextWriter output, CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(500));
        try
        {
            do
            {
                await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                    $"status welcomed={Welcomed} connects={Interlocked.Read(ref connects)} heartbeats={Interlocked.Read(ref heartbeats)} commands={Interlocked.Read(ref commands)} failures={Interlocked.Read(ref failures)}"));
                await output.FlushAsync(cancellationToken);
            }
            while (await timer.WaitForNextTickAsync(cancellationToken));
        }
        catch (OperationCanceledException)
        {
            // Stopped.
        }
    }
}
