namespace StreamSpace.Api.Features.Replicas;

/// <summary>A replica as the others see it in <c>api_replicas</c>.</summary>
public sealed record ReplicaInfo(Guid Id, string? DataUrl, bool Alive, bool Draining);

/// <summary>What other features may ask about the control plane's replicas.</summary>
public interface IReplicaDirectory
{
    /// <summary>The replica's row, or null when no replica of that id registered (or its row was pruned).</summary>
    Task<ReplicaInfo?> FindAsync(Guid replicaId, CancellationToken cancellationToken);

    /// <summary>True while the replica refreshed its row within <see cref="ReplicaRegistry.AliveFor"/>.</summary>
    Task<bool> IsAliveAsync(Guid replicaId, CancellationToken cancellationToken);

    /// <summary>True when another replica is alive and not draining: somewhere for this one's agents and viewers to go.</summary>
    Task<bool> OthersAliveAsync(CancellationToken cancellationToken);
}
