using System.Collections.Concurrent;
using StreamSpace.Api.Features.Agents.Hub;
using StreamSpace.Contracts;

namespace StreamSpace.Tests.Api.Features.Agents;

/// <summary>
/// The hub's message lanes on their own, with a handler that records what it was given: different sessions' messages
/// run side by side, one session's in the order the agent sent them, and a heartbeat's snapshot of the sessions is
/// handled between what came before it and what came after.
/// </summary>
public sealed class AgentMessageLanesTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Different_sessions_run_side_by_side_and_each_session_keeps_its_order()
    {
        var (first, second) = TwoSessionsOnDifferentLanes();
        var secondStarted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var handled = new ConcurrentDictionary<string, ConcurrentQueue<SessionState>>();
        using var stop = new CancellationTokenSource();
        var lanes = new AgentMessageLanes(async (message, _) =>
        {
            var report = ((SessionStateMessage)message).Session;
            if (report.SessionId == second)
            {
                secondStarted.TrySetResult();
            }
            else if (report.State == SessionState.Starting)
            {
                // Handled one after another, this would wait for a message queued behind it: the lanes would stall.
                await secondStarted.Task.WaitAsync(Limit);
            }

            await Task.Delay(Random.Shared.Next(0, 3));
            handled.GetOrAdd(report.SessionId, _ => new ConcurrentQueue<SessionState>()).Enqueue(report.State);
            return true;
        }, () => Task.CompletedTask, stop);

        SessionState[] states = [SessionState.Starting, SessionState.Running, SessionState.Hibernating, SessionState.Hibernated, SessionState.Waking, SessionState.Running, SessionState.Stopping, SessionState.Stopped];
        foreach (var state in states)
        {
            await lanes.PostAsync(new SessionStateMessage(new ReportedSession(first, state)), CancellationToken.None);
            await lanes.PostAsync(new SessionStateMessage(new ReportedSession(second, state)), CancellationToken.None);
        }

        await lanes.CompleteAsync().WaitAsync(Limit);
        Assert.Equal(states, handled[first]);
        Assert.Equal(states, handled[second]);
    }

    [Fact]
    public async Task A_heartbeat_that_reports_sessions_is_handled_after_every_earlier_message_and_before_every_later_one()
    {
        var (first, second) = TwoSessionsOnDifferentLanes();
        var order = new ConcurrentQueue<string>();
        using var stop = new CancellationTokenSource();
        var lanes = new AgentMessageLanes(async (message, _) =>
        {
            switch (message)
            {
                case SessionStateMessage { Session.State: SessionState.Running } slow:
                    // Slow enough that a heartbeat handled alongside would overtake it.
                    await Task.Delay(200);
                    order.Enqueue($"{slow.Session.SessionId} running");
                    break;
                case SessionStateMessage state:
                    order.Enqueue($"{state.Session.SessionId} {state.Session.State.ToName()}");
                    break;
                case HeartbeatMessage:
                    order.Enqueue("heartbeat");
                    break;
            }

            return true;
        }, () => Task.CompletedTask, stop);

        await lanes.PostAsync(new SessionStateMessage(new ReportedSession(first, SessionState.Running)), CancellationToken.None);
        await lanes.PostAsync(new HeartbeatMessage(DateTimeOffset.UtcNow, new AgentCapacity(10, 2),
            [new ReportedSession(first, SessionState.Running), new ReportedSession(second, SessionState.Running)]), CancellationToken.None);
        await lanes.PostAsync(new SessionStateMessage(new ReportedSession(second, SessionState.Stopped)), CancellationToken.None);
        await lanes.CompleteAsync().WaitAsync(Limit);

        Assert.Equal([$"{first} running", "heartbeat", $"{second} stopped"], order);
    }

    [Fact]
    public async Task A_commands_result_is_handled_after_its_ack_though_they_take_different_lanes()
    {
        var sessionId = "sess-000000000001";
        var command = Enumerable.Range(0, 1000).Select(_ => Guid.NewGuid())
            .First(id => AgentMessageLanes.SessionLaneOf(id.ToString()) != AgentMessageLanes.SessionLaneOf(sessionId));
        var order = new ConcurrentQueue<string>();
        using var stop = new CancellationTokenSource();
        var lanes = new AgentMessageLanes(async (message, _) =>
        {
            if (message is CommandAckMessage)
            {
                // Slow enough that the result, alone on its lane, would be handled first.
                await Task.Delay(200);
            }

            order.Enqueue(message.GetType().Name);
            return true;
        }, () => Task.CompletedTask, stop);

        await lanes.PostAsync(new CommandAckMessage(command), CancellationToken.None);
        await lanes.PostAsync(new CommandResultMessage(command, true, Session: new ReportedSession(sessionId, SessionState.Running)), CancellationToken.None);
        await lanes.CompleteAsync().WaitAsync(Limit);

        Assert.Equal([nameof(CommandAckMessage), nameof(CommandResultMessage)], order);
    }

    [Fact]
    public async Task A_heartbeat_refused_for_a_revoked_credential_closes_once_and_nothing_after_it_is_handled()
    {
        var handled = new ConcurrentQueue<AgentMessage>();
        var closes = 0;
        using var stop = new CancellationTokenSource();
        var lanes = new AgentMessageLanes((message, _) =>
        {
            handled.Enqueue(message);
            return Task.FromResult(message is not HeartbeatMessage);
        }, () =>
        {
            Interlocked.Increment(ref closes);
            return Task.CompletedTask;
        }, stop);

        var report = new ReportedSession("sess-000000000001", SessionState.Running);
        await lanes.PostAsync(new HeartbeatMessage(DateTimeOffset.UtcNow, new AgentCapacity(10, 1), [report]), CancellationToken.None);
        await lanes.PostAsync(new SessionStateMessage(report), CancellationToken.None);
        await lanes.PostAsync(new HeartbeatMessage(DateTimeOffset.UtcNow, new AgentCapacity(10, 1), [report]), CancellationToken.None);
        await lanes.CompleteAsync().WaitAsync(Limit);

        Assert.Equal(1, closes);
        Assert.IsType<HeartbeatMessage>(Assert.Single(handled));
    }

    [Fact]
    public async Task A_message_agents_may_not_send_is_a_protocol_violation()
    {
        using var stop = new CancellationTokenSource();
        var lanes = new AgentMessageLanes((_, _) => Task.FromResult(true), () => Task.CompletedTask, stop);
        await Assert.ThrowsAsync<ProtocolViolationException>(() =>
            lanes.PostAsync(new TunnelOpenMessage(1, "sess-000000000001"), CancellationToken.None).AsTask());
        await lanes.CompleteAsync().WaitAsync(Limit);
    }

    /// <summary>Two session ids that land on different lanes (lanes are picked by a per-process hash).</summary>
    private static (string First, string Second) TwoSessionsOnDifferentLanes()
    {
        var first = "sess-000000000001";
        var second = Enumerable.Range(2, 1000).Select(i => $"sess-{i:D12}")
            .First(id => AgentMessageLanes.SessionLaneOf(id) != AgentMessageLanes.SessionLaneOf(first));
        return (first, second);
    }
}
