using System.Collections.Concurrent;

namespace StreamSpace.Api.Features.Agents.Hub;

/// <summary>
/// Agent connections the hub refused in the last hour, by agent id: how often, when last, and why (a revoked or
/// unknown key, a protocol mismatch, too many attempts), so the admin sees why an agent reads offline. Bounded: an attacker cycling through ids cannot grow it, and old entries give way to new ones.
/// </summary>
public sealed class RefusedAgentLog(TimeProvider time)
{
    public const int MaximumEntries = 1000;
    public static readonly TimeSpan Kept = TimeSpan.FromHours(1);

    private readonly ConcurrentDictionary<string, AgentRefusal> refusals = new();

    public void Record(string agentId, string reason)
    {
        var now = time.GetUtcNow();
        if (refusals.Count >= MaximumEntries && !refusals.ContainsKey(agentId))
        {
            MakeRoom(now);
        }

        refusals.AddOrUpdate(agentId, id => new AgentRefusal(id, 1, now, reason),
            (_, old) => now - old.LastAt > Kept ? new AgentRefusal(old.AgentId, 1, now, reason) : new AgentRefusal(old.AgentId, old.Count + 1, now, reason));
    }

    public void Forget(string agentId) => refusals.TryRemove(agentId, out _);

    public IReadOnlyList<AgentRefusal> Recent(TimeSpan within) =>
        [.. refusals.Values.Where(r => time.GetUtcNow() - r.LastAt <= within).OrderBy(r => r.AgentId)];

    public int Count => refusals.Count;

    /// <summary>Drops what is older than an hour; when the last hour alone fills the log, the oldest tenth, so that the
    /// newest refusals (the ones an admin is looking into) are always kept. Runs only when full, so it costs nothing
    /// while refusals are few.</summary>
    private void MakeRoom(DateTimeOffset now)
    {
        foreach (var (id, refusal) in refusals)
        {
            if (now - refusal.LastAt > Kept)
            {
                refusals.TryRemove(id, out _);
            }
        }

        if (refusals.Count >= MaximumEntries)
        {
            foreach (var oldest in refusals.Values.OrderBy(r => r.LastAt).Take(MaximumEntries / 10))
            {
                refusals.TryRemove(oldest.AgentId, out _);
            }
        }
    }
}
