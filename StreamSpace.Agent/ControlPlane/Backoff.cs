namespace StreamSpace.Agent.ControlPlane;

/// <summary>Exponential backoff with full jitter: a random wait up to min(cap, base·2^attempt), so agents that lost the control plane together do not return together.</summary>
public static class Backoff
{
    public static readonly TimeSpan Base = TimeSpan.FromSeconds(1);
    public static readonly TimeSpan Cap = TimeSpan.FromSeconds(30);

    public static TimeSpan Delay(int attempt, Random random)
    {
        var ceiling = Math.Min(Cap.TotalMilliseconds, Base.TotalMilliseconds * Math.Pow(2, Math.Min(attempt, 16)));
        return TimeSpan.FromMilliseconds(random.NextDouble() * ceiling);
    }
}
