using StreamSpace.Api.Features.Replicas;

namespace StreamSpace.Api.Features.Agents.Hub;

/// <summary>The hub's step of the replica's graceful stop.</summary>
public sealed class AgentHubDrain(AgentHub hub) : IReplicaDrainStep
{
    public Task DrainAsync(bool othersAlive, CancellationToken cancellationToken) =>
        othersAlive ? hub.MoveAgentsAsync(cancellationToken) : hub.CloseAgentsAsync();
}
