using System.Collections.Concurrent;
using System.Net.WebSockets;
using StreamSpace.Api.Features.Replicas;
using StreamSpace.Api.Features.Sessions.Viewers;

namespace StreamSpace.Api.Features.Sessions.Vnc;

/// <summary>
/// The viewers open on this replica, and the audio sockets beside them, so that a replica going away can send each of them 4307 "replica stopping",
/// which the web viewer answers by reconnecting at once (through the balancer, to a replica that stays). New viewers are
/// refused from SIGTERM on; open ones are closed as the replica's drain step, after the agents have moved.
/// </summary>
public sealed class ViewerDrain(IReplicaDrain replica, ILogger<ViewerDrain> logger) : IReplicaDrainStep
{
    private readonly ConcurrentDictionary<Guid, Action<WebSocketCloseStatus, string>> open = new();
    private readonly TaskCompletionSource emptied = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile bool draining;

    /// <summary>True once the replica drains or <see cref="CloseAllAsync"/> began: new viewers are refused with 503 before the upgrade.</summary>
    public bool IsDraining => draining || replica.IsDraining;

    public int Count => open.Count;

    /// <summary>Tracks a viewer until the returned handle is disposed; a viewer that opens during a drain is closed at once.</summary>
    public IDisposable Track(LiveViewer viewer) => Track(viewer.Id, viewer.Close);

    /// <summary>Tracks a socket beside a viewer (its sound), which <paramref name="close"/> asks to close, as <see cref="Track(LiveViewer)"/> does a viewer.</summary>
    public IDisposable Track(Guid id, Action<WebSocketCloseStatus, string> close)
    {
        open[id] = close;
        if (draining)
        {
            close(VncCloseCodes.ReplicaStopping, "replica stopping");
        }

        return new Tracked(this, id);
    }

    /// <summary>
    /// Closes every viewer open here with 4307 "replica stopping" and refuses new ones, then waits until they have
    /// closed (their rows and audit entries are written) or <paramref name="cancellationToken"/> ends the wait.
    /// </summary>
    public async Task CloseAllAsync(CancellationToken cancellationToken)
    {
        draining = true;
        var viewers = open.Values.ToList();
        logger.LogInformation("Replica stopping: closing {Count} viewers and audio sockets with 4307", viewers.Count);
        foreach (var close in viewers)
        {
            close(VncCloseCodes.ReplicaStopping, "replica stopping");
        }

        if (open.IsEmpty)
        {
            return;
        }

        try
        {
            await emptied.Task.WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            logger.LogWarning("Replica stopping: {Count} viewers had not closed when the wait ended", open.Count);
        }
    }

    /// <summary>4307 either way: the web viewer reconnects at once, and when no replica is left it backs off as usual.</summary>
    public Task DrainAsync(bool othersAlive, CancellationToken cancellationToken) => CloseAllAsync(cancellationToken);

    private sealed class Tracked(ViewerDrain owner, Guid id) : IDisposable
    {
        public void Dispose()
        {
            if (owner.open.TryRemove(id, out _) && owner.draining && owner.open.IsEmpty)
            {
                owner.emptied.TrySetResult();
            }
        }
    }
}
