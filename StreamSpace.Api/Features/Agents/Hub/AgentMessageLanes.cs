using System.Threading.Channels;
using StreamSpace.Contracts;

namespace StreamSpace.Api.Features.Agents.Hub;

/// <summary>
/// Handles one agent connection's messages on parallel lanes, so one session's database writes do not wait behind
/// another's (ten launches at once used to queue their acks and results one after another). Messages about one
/// session share a lane, picked by hash of the session id, and so keep the order the agent sent them in. Heartbeats
/// and check reports run on a lane of their own. A heartbeat that reports sessions is a fence: the receive loop waits
/// until the lanes have handled everything received before it, handles it itself, and only then reads on, so
/// its snapshot of the sessions can never overwrite a newer report, nor an older one a newer snapshot.
/// Lanes start at their first message, so an agent that only heartbeats (most of 10,000 idle ones) costs one lane.
/// </summary>
/// <remarks>
/// An ack carries only its command id, so it takes the lane of that id, and the command's result (on its session's
/// lane) waits until the ack was handled: the agent sends ack, result and the session's later reports in that order,
/// and each session's changes are recorded in that order ("starting" from the ack, then what the result says).
/// </remarks>
/// <param name="handle">Handles one message; false when the agent's credential no longer holds.</param>
/// <param name="refused">Closes the connection after <paramref name="handle"/> said false; called once, after which no message is handled.</param>
/// <param name="stop">Cancelled when a handler fails, which ends the connection as an unhandled message always has.</param>
public sealed class AgentMessageLanes(Func<AgentMessage, CancellationToken, Task<bool>> handle, Func<Task> refused, CancellationTokenSource stop)
{
    /// <summary>Session lanes; the control lane (heartbeats, checks) comes on top.</summary>
    public const int SessionLanes = 8;

    /// <summary>Messages a lane holds before the receive loop waits, so a slow database slows the agent's socket, not memory.</summary>
    private const int LaneCapacity = 256;

    private readonly Lane?[] lanes = new Lane?[SessionLanes + 1];

    /// <summary>Acks posted and not yet matched by their command's result; only the receive loop touches it.</summary>
    private readonly Dictionary<Guid, Task> acks = [];
    private Exception? failure;
    private int closed;

    private sealed record Lane(Channel<Func<Task>> Channel, Task Reader);

    private ChannelWriter<Func<Task>> Control => LaneAt(SessionLanes);

    /// <summary>Queues a message on its lane; waits while that lane is full.</summary>
    /// <exception cref="ProtocolViolationException">Agents may not send this kind of message.</exception>
    public async ValueTask PostAsync(AgentMessage message, CancellationToken cancellationToken)
    {
        switch (message)
        {
            case HeartbeatMessage { Sessions.Count: > 0 }:
                await DrainAsync(cancellationToken);
                await HandleAsync(message);
                break;
            case HeartbeatMessage or AgentChecksMessage:
                await Control.WriteAsync(() => HandleAsync(message), cancellationToken);
                break;
            case CommandAckMessage ack:
                var acked = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                ForgetHandledAcks();
                acks[ack.CommandId] = acked.Task;
                await SessionLane(ack.CommandId.ToString()).WriteAsync(async () =>
                {
                    try
                    {
                        await HandleAsync(message);
                    }
                    finally
                    {
                        acked.TrySetResult();
                    }
                }, cancellationToken);
                break;
            case CommandResultMessage result:
                var ackFirst = acks.Remove(result.CommandId, out var pending) ? pending : Task.CompletedTask;
                await SessionLane(result.Session?.SessionId ?? result.CommandId.ToString()).WriteAsync(async () =>
                {
                    await ackFirst.WaitAsync(stop.Token);
                    await HandleAsync(message);
                }, cancellationToken);
                break;
            case SessionStateMessage state:
                await SessionLane(state.Session.SessionId).WriteAsync(() => HandleAsync(message), cancellationToken);
                break;
            case RecordingMessage recording:
                await SessionLane(recording.SessionId).WriteAsync(() => HandleAsync(message), cancellationToken);
                break;
            default:
                throw new ProtocolViolationException($"agents may not send {message.GetType().Name}");
        }
    }

    /// <summary>
    /// Lets the lanes finish what they hold (nothing more may be posted), then rethrows the first handler's failure,
    /// as the connection would have thrown it had it handled the message itself.
    /// </summary>
    public async Task CompleteAsync()
    {
        var started = lanes.OfType<Lane>().ToList();
        foreach (var lane in started)
        {
            lane.Channel.Writer.TryComplete();
        }

        await Task.WhenAll(started.Select(lane => lane.Reader));
        if (failure is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);
        }
    }

    private ChannelWriter<Func<Task>> SessionLane(string key) => LaneAt(SessionLaneOf(key));

    /// <summary>Drops handled acks whose result never came (a command the agent dropped), so the map stays small.</summary>
    private void ForgetHandledAcks()
    {
        if (acks.Count >= 1024)
        {
            foreach (var (id, _) in acks.Where(a => a.Value.IsCompleted).ToList())
            {
                acks.Remove(id);
            }
        }
    }

    /// <summary>The session lane of a session id (or of a command id, for messages that carry no session).</summary>
    internal static int SessionLaneOf(string key) => (int)((uint)StringComparer.Ordinal.GetHashCode(key) % SessionLanes);

    /// <summary>The lane, started at its first use (only the receive loop calls this, so no two callers race).</summary>
    private ChannelWriter<Func<Task>> LaneAt(int index)
    {
        if (lanes[index] is not { } lane)
        {
            var channel = Channel.CreateBounded<Func<Task>>(
                new BoundedChannelOptions(LaneCapacity) { SingleReader = true, SingleWriter = true, FullMode = BoundedChannelFullMode.Wait });
            lanes[index] = lane = new Lane(channel, Task.Run(() => ReadAsync(channel.Reader)));
        }

        return lane.Channel.Writer;
    }

    /// <summary>Waits until every started lane has handled what it held (the control lane too: heartbeats stay in order).</summary>
    private async Task DrainAsync(CancellationToken cancellationToken)
    {
        var drained = new List<Task>();
        for (var index = 0; index < lanes.Length; index++)
        {
            if (lanes[index] is { } lane)
            {
                var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                await lane.Channel.Writer.WriteAsync(() =>
                {
                    done.TrySetResult();
                    return Task.CompletedTask;
                }, cancellationToken);
                drained.Add(done.Task);
            }
        }

        await Task.WhenAll(drained).WaitAsync(cancellationToken);
    }

    private async Task HandleAsync(AgentMessage message)
    {
        if (Volatile.Read(ref closed) == 1)
        {
            return;
        }

        if (!await handle(message, stop.Token) && Interlocked.Exchange(ref closed, 1) == 0)
        {
            await refused();
        }
    }

    private async Task ReadAsync(ChannelReader<Func<Task>> lane)
    {
        await foreach (var work in lane.ReadAllAsync(CancellationToken.None))
        {
            if (stop.IsCancellationRequested)
            {
                // The connection is ending: what is left goes again, or is reported again, after the agent reconnects.
                continue;
            }

            try
            {
                await work();
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                // Ended with the connection.
            }
            catch (Exception e)
            {
                Interlocked.CompareExchange(ref failure, e, null);
                await stop.CancelAsync();
            }
        }
    }
}
