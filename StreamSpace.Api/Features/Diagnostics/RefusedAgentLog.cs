using System.Collections.Concurrent;

namespace StreamSpace.Api.Features.Diagnostics;

/// <summary>Agent connections the hub refused, by agent id: how often, when last, and why (the seed's "agent offline" causes).</summary>
public sealed class RefusedAgentLog(TimeProvider time)
{
    public sealed record Refusal(string AgentId, int Count, DateTimeOffset LastAt, string Reason);

    private readonly ConcurrentDictionary<string, Refusal> refusals = new();

    public void Record(string agentId, string reason)
    {
        // Bounded: an attacker cycling through ids cannot grow this without limit.
        if (refusals.Count > 1000 && !refusals.ContainsKey(agentId))
        {
            return;
        }

        refusals.AddOrUpdate(agentId, id => new Refusal(id, 1, time.GetUtcNow(), reason),
            (_, old) => new Refusal(old.AgentId, old.Count + 1, time.GetUtcNow(), reason));
    }

    public void Forget(string agentId) => refusals.TryRemove(agentId, out _);

    public IReadOnlyList<Refusal> Recent(TimeSpan within) =>
        [.. refusals.Values.Where(r => time.GetUtcNow() - r.LastAt <= within).OrderBy(r => r.AgentId)];
}
