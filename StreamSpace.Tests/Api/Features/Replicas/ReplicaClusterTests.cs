using System.Net;
using System.Net.Http.Json;
using Dapper;
using Npgsql;
using StreamSpace.Contracts;
using StreamSpace.Contracts.Api;
using StreamSpace.Tests.Api.Features.Sessions;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Api.Features.Replicas;

/// <summary>Two API processes behind HAProxy on one database, with one local agent dialing the balancer.</summary>
public sealed class ReplicaClusterTests(ReplicaCluster cluster, Xunit.Abstractions.ITestOutputHelper output) : IClassFixture<ReplicaCluster>, IAsyncLifetime
{
    public Task InitializeAsync() => cluster.EnsureRunningAsync();

    public Task DisposeAsync() => Task.CompletedTask;

    [Fact]
    public async Task Both_replicas_register_alive_under_ids_of_their_own()
    {
        var ids = await Task.WhenAll(cluster.Replicas.Select(r => r.IdAsync()));
        Assert.Equal(2, (await AliveReplicasAsync()).Intersect(ids).Count());
        Assert.NotEqual(ids[0], ids[1]);
    }

    [Fact]
    public async Task A_ticket_issued_by_one_replica_opens_the_viewer_on_the_other_once_and_only_once()
    {
        var (holder, other) = await cluster.AgentHolderAsync();
        using var viaOther = await cluster.AdminClientAsync(other.BaseAddress);
        var id = (await viaOther.LaunchAsync()).Id;
        await viaOther.WaitForStateAsync(id, SessionState.Running);

        // Issued by the replica that does not hold the agent, redeemed on the one that does: the desktop arrives.
        var url = await viaOther.ConnectUrlAsync(id);
        using (var viewer = await RfbViewer.ConnectAsync(holder.BaseAddress, url))
        {
            var desktop = await viewer.HandshakeAsync();
            Assert.True(desktop.Width > 0 && desktop.Height > 0);
        }

        // Used once, it is gone for every replica.
        foreach (var replica in new[] { holder, other })
        {
            var refused = await Assert.ThrowsAsync<System.Net.WebSockets.WebSocketException>(() => RfbViewer.ConnectAsync(replica.BaseAddress, url));
            Assert.Contains("401", refused.Message);
        }
    }

    [Fact]
    public async Task A_viewer_on_the_replica_that_does_not_hold_the_agent_gets_the_desktop()
    {
        var (_, other) = await cluster.AgentHolderAsync();
        using var viaOther = await cluster.AdminClientAsync(other.BaseAddress);
        var id = (await viaOther.LaunchAsync()).Id;
        await viaOther.WaitForStateAsync(id, SessionState.Running);

        // The open goes to the holder by NOTIFY; the agent dials its data connection to this replica.
        using var viewer = await RfbViewer.ConnectAsync(other.BaseAddress, await viaOther.ConnectUrlAsync(id));
        var desktop = await viewer.HandshakeAsync();
        var (rectangles, _, _) = await viewer.RequestFullUpdateAsync(desktop);
        Assert.True(rectangles > 0, "the framebuffer update had no rectangles");
    }

    [Fact]
    public async Task Twenty_viewers_opened_through_the_balancer_all_reach_the_desktop()
    {
        using var admin = await cluster.AdminClientAsync(cluster.Balancer.BaseAddress);
        var id = (await admin.LaunchAsync()).Id;
        await admin.WaitForStateAsync(id, SessionState.Running);

        // Round robin with no stickiness: tickets and viewers land on either replica, about half of them crossed.
        var viewers = await Task.WhenAll(Enumerable.Range(0, 20).Select(async _ =>
        {
            var viewer = await RfbViewer.ConnectAsync(cluster.Balancer.BaseAddress, await admin.ConnectUrlAsync(id));
            var desktop = await viewer.HandshakeAsync();
            var (rectangles, _, _) = await viewer.RequestFullUpdateAsync(desktop);
            return (viewer, rectangles);
        }));
        try
        {
            Assert.All(viewers, v => Assert.True(v.rectangles > 0, "a viewer's framebuffer update had no rectangles"));
        }
        finally
        {
            foreach (var (viewer, _) in viewers)
            {
                viewer.Dispose();
            }
        }
    }

    /// <summary>
    /// Sent sooner than this, a command went by its NOTIFY: the sweep takes only commands pending for longer
    /// (<see cref="StreamSpace.Api.Features.Agents.Hub.CommandSweep.Overdue"/>, 2 s). Measured, it takes milliseconds.
    /// </summary>
    private static readonly TimeSpan ByNotification = TimeSpan.FromSeconds(1.5);

    [Fact]
    public async Task Commands_made_on_either_replica_reach_the_agent_by_notification_not_by_the_sweep()
    {
        var (holder, other) = await cluster.AgentHolderAsync();
        using var viaOther = await cluster.AdminClientAsync(other.BaseAddress);
        using var viaHolder = await cluster.AdminClientAsync(holder.BaseAddress);

        // The start is committed on the replica without the agent: only the NOTIFY takes it to the holder.
        var id = (await viaOther.LaunchAsync()).Id;
        await viaOther.WaitForStateAsync(id, SessionState.Running);
        Assert.InRange(await SendDelayAsync(id, CommandTypes.StartSession), TimeSpan.Zero, ByNotification);

        var stopped = await viaHolder.DeleteAsync($"/api/v1/sessions/{id}");
        Assert.Equal(HttpStatusCode.Accepted, stopped.StatusCode);
        await viaOther.WaitForStateAsync(id, SessionState.Stopped);
        Assert.InRange(await SendDelayAsync(id, CommandTypes.StopSession), TimeSpan.Zero, ByNotification);
    }

    [Fact]
    public async Task A_command_whose_notification_was_lost_is_sent_by_the_sweep_within_5_seconds()
    {
        var (holder, other) = await cluster.AgentHolderAsync();
        using var viaOther = await cluster.AdminClientAsync(other.BaseAddress);

        // The holder listens again 2 s after losing its connection; a start committed now NOTIFYs into the void.
        await cluster.KillListeningConnectionAsync(holder);
        var id = (await viaOther.LaunchAsync()).Id;
        await viaOther.WaitForStateAsync(id, SessionState.Running);
        Assert.InRange(await SendDelayAsync(id, CommandTypes.StartSession), TimeSpan.Zero, TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task Live_session_events_on_both_replicas_see_a_launch_made_through_one_also_after_the_other_lost_its_notifications()
    {
        var (a, b) = (cluster.Replicas[0], cluster.Replicas[1]);
        using var viaA = await cluster.AdminClientAsync(a.BaseAddress);
        await using var eventsOnA = await SessionEvents.OpenAsync(a.BaseAddress, viaA);
        await using var eventsOnB = await SessionEvents.OpenAsync(b.BaseAddress, viaA);

        var first = (await viaA.LaunchAsync()).Id;
        await eventsOnA.WaitForAsync(first, SessionState.Running);
        await eventsOnB.WaitForAsync(first, SessionState.Running);
        SessionState[] lifecycle = [SessionState.Pending, SessionState.Starting, SessionState.Running];
        foreach (var seen in new[] { eventsOnA.StatesOf(first), eventsOnB.StatesOf(first) })
        {
            // A quick step can fold into the next one (each event is the session as read), but none goes backwards.
            Assert.Equal(seen.OrderBy(state => Array.IndexOf(lifecycle, state)), seen);
        }

        // B loses its listening connection for the whole of the next launch, and every notification of it with it.
        var second = (await viaA.LaunchAsync()).Id;
        using (var keepKilling = new CancellationTokenSource())
        {
            var killer = Task.Run(async () =>
            {
                while (!keepKilling.IsCancellationRequested)
                {
                    await cluster.KillListeningConnectionsAsync(b);
                    await Task.Delay(20);
                }
            });
            await cluster.KillListeningConnectionsAsync(b);
            await eventsOnA.WaitForAsync(second, SessionState.Running);
            await keepKilling.CancelAsync();
            await killer;
        }

        // Listening again, B catches up: its client is told the session runs, and B's session list says so at once.
        await eventsOnB.WaitForAsync(second, SessionState.Running, TimeSpan.FromSeconds(10));
        using var viaB = await cluster.AdminClientAsync(b.BaseAddress);
        var listed = await (await viaB.GetAsync("/api/v1/sessions")).AssertJsonAsync<List<SessionResponse>>(HttpStatusCode.OK);
        Assert.Equal(SessionState.Running, listed.Single(s => s.Id == second).State);
    }

    [Fact]
    public async Task When_the_replica_holding_the_agent_is_killed_the_agent_is_back_on_the_other_within_5_seconds_and_its_session_runs_on()
    {
        var (holder, other) = await cluster.AgentHolderAsync();
        using var admin = await cluster.AdminClientAsync(other.BaseAddress);
        var id = (await admin.LaunchAsync()).Id;
        await admin.WaitForStateAsync(id, SessionState.Running);
        var statesBefore = await admin.StateChangesAsync(id);

        // A viewer on the replica about to die.
        using var doomed = await RfbViewer.ConnectAsync(holder.BaseAddress, await admin.ConnectUrlAsync(id));
        await doomed.HandshakeAsync();

        var killedAt = DateTime.UtcNow;
        await holder.KillAsync();
        var otherId = await other.IdAsync();
        await Eventually.TrueAsync(async () => await cluster.AgentConnectionAsync() is { } now && now.ReplicaId == otherId,
            TimeSpan.FromSeconds(5), "the agent's hello to be accepted by the surviving replica");
        var moved = await cluster.AgentConnectionAsync();
        Assert.True(moved is { } m && m.ConnectedAt >= killedAt.AddSeconds(-1), "the hello predates the kill");
        output.WriteLine($"kill -9: the agent's hello was accepted by the other replica {(moved.Value.ConnectedAt - killedAt).TotalMilliseconds:0} ms after the kill");

        // The session never noticed: still running, with no state change in the audit log.
        Assert.Equal(SessionState.Running, (await admin.WaitForStateAsync(id, SessionState.Running)).State);
        Assert.Equal(statesBefore, await admin.StateChangesAsync(id));

        // Its viewer was closed; the reconnect (a fresh ticket, through the balancer) reaches the desktop again.
        // The kernel resets its connection at once: the read fails, where a viewer left open would time out instead.
        await Assert.ThrowsAsync<System.Net.WebSockets.WebSocketException>(() => doomed.ReadAsync(1 << 20, TimeSpan.FromSeconds(10)));
        using (var again = await RfbViewer.ConnectAsync(cluster.Balancer.BaseAddress, await admin.ConnectUrlAsync(id)))
        {
            var desktop = await again.HandshakeAsync();
            Assert.True((await again.RequestFullUpdateAsync(desktop)).Rectangles > 0, "the reconnected viewer's update had no rectangles");
        }

        // And it still takes commands, now through the survivor.
        Assert.Equal(HttpStatusCode.Accepted, (await admin.DeleteAsync($"/api/v1/sessions/{id}")).StatusCode);
        await admin.WaitForStateAsync(id, SessionState.Stopped);
    }

    [Fact]
    public async Task A_replica_stopped_with_SIGTERM_during_10_concurrent_launches_fails_none_and_runs_no_command_twice()
    {
        var (holder, other) = await cluster.AgentHolderAsync();
        using var admin = await cluster.AdminClientAsync(cluster.Balancer.BaseAddress);
        var executedBefore = cluster.Agent.Commands.Executed;

        var launches = Enumerable.Range(0, 10).Select(_ => admin.LaunchAsync()).ToList();
        await Task.WhenAny(launches);
        await holder.TerminateAsync();

        // Draining: its health check fails at once, so the balancer stops sending it new work.
        using (var direct = holder.CreateClient())
        {
            await Eventually.TrueAsync(async () => await direct.GetAsync("/health") is { StatusCode: HttpStatusCode.ServiceUnavailable } health
                && (await health.Content.ReadAsStringAsync()).Contains("draining"), TimeSpan.FromSeconds(5), "the stopping replica's /health to say draining");
        }

        var ids = (await Task.WhenAll(launches)).Select(s => s.Id).ToList();

        // It moves the agent (4005) before it exits, by itself and cleanly; the agent is then on the other one.
        Assert.Equal(0, await holder.WaitForExitAsync(TimeSpan.FromSeconds(20)));
        Assert.Contains("All 1 agents said hello elsewhere", holder.Output);
        Assert.Equal(await other.IdAsync(), await cluster.AgentReplicaIdAsync());

        using var viaOther = await cluster.AdminClientAsync(other.BaseAddress);
        foreach (var id in ids)
        {
            await viaOther.WaitForStateAsync(id, SessionState.Running, TimeSpan.FromSeconds(60));
        }

        await using var connection = new NpgsqlConnection(cluster.ConnectionString);
        var commands = (await connection.QueryAsync<(string SessionId, string Status)>(
            "SELECT session_id, status FROM agent_commands WHERE session_id = ANY(@ids)", new { ids = ids.ToArray() })).ToList();
        Assert.Equal(ids.Order(), commands.Select(c => c.SessionId).Order());
        Assert.All(commands, c => Assert.Equal("completed", c.Status));
        Assert.Equal(10, cluster.Agent.Commands.Executed - executedBefore);
        foreach (var id in ids)
        {
            Assert.DoesNotContain(SessionState.Failed, await viaOther.StateChangesAsync(id));
        }
    }

    /// <summary>The longest a viewer may be without its desktop while the replicas restart one after the other (issue 16).</summary>
    private static readonly TimeSpan LongestGap = TimeSpan.FromSeconds(2);

    [Fact]
    public async Task A_rolling_restart_of_both_replicas_leaves_no_viewer_without_its_desktop_for_more_than_2_seconds()
    {
        using var admin = await cluster.AdminClientAsync(cluster.Balancer.BaseAddress);
        var id = (await admin.LaunchAsync()).Id;
        await admin.WaitForStateAsync(id, SessionState.Running);

        // Ten viewers through the balancer that do what viewer.js does: on a close, a fresh ticket and a new socket at once.
        using var stop = new CancellationTokenSource();
        var viewers = Enumerable.Range(0, 10).Select(_ => new ReconnectingViewer(cluster.Balancer.BaseAddress, admin, id)).ToList();
        var running = viewers.Select(v => v.RunAsync(stop.Token)).ToList();
        await Eventually.TrueAsync(() => Task.FromResult(viewers.All(v => v.Connected)), TimeSpan.FromSeconds(20), "every viewer to reach the desktop");

        // A rolling update: each replica in turn is stopped with SIGTERM and replaced, the next only once it serves.
        for (var i = 0; i < 2; i++)
        {
            var replica = cluster.Replicas[i];
            await replica.TerminateAsync();
            Assert.Equal(0, await replica.WaitForExitAsync(TimeSpan.FromSeconds(20)));
            await cluster.EnsureRunningAsync();
        }

        await Eventually.TrueAsync(() => Task.FromResult(viewers.All(v => v.Connected)), TimeSpan.FromSeconds(10), "every viewer to be back on the desktop");
        await stop.CancelAsync();
        await Task.WhenAll(running);

        var gaps = viewers.SelectMany(v => v.Gaps).Order().ToList();
        var codes = viewers.SelectMany(v => v.CloseCodes).ToList();
        output.WriteLine($"rolling restart: {codes.Count} viewer closes ({string.Join(", ", codes.Distinct())}); " +
            $"gaps p50 {Percentile(gaps, 0.5).TotalMilliseconds:0} ms, p95 {Percentile(gaps, 0.95).TotalMilliseconds:0} ms, max {gaps.LastOrDefault().TotalMilliseconds:0} ms");
        // Each viewer was on a stopping replica at least once; each close said why (4307), none was a plain drop.
        Assert.All(viewers, v => Assert.NotEmpty(v.CloseCodes));
        Assert.All(codes, code => Assert.Equal(4307, code));
        Assert.True(gaps.Last() <= LongestGap, $"a viewer was without its desktop for {gaps.Last().TotalMilliseconds:0} ms");
    }

    private static TimeSpan Percentile(List<TimeSpan> sorted, double p) =>
        sorted.Count == 0 ? TimeSpan.Zero : sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(p * sorted.Count) - 1)];

    /// <summary>
    /// A viewer that reconnects as the web viewer does after 4307: a fresh ticket and a new socket at once, retrying
    /// every 100 ms while that fails. It records each close's code and how long it was without its desktop.
    /// </summary>
    private sealed class ReconnectingViewer(Uri balancer, HttpClient admin, string sessionId)
    {
        private volatile bool connected;

        public bool Connected => connected;

        public List<int> CloseCodes { get; } = [];

        public List<TimeSpan> Gaps { get; } = [];

        public async Task RunAsync(CancellationToken stop)
        {
            long? lostAt = null;
            while (!stop.IsCancellationRequested)
            {
                RfbViewer? viewer = null;
                try
                {
                    var ticket = await admin.PostAsync($"/api/v1/sessions/{sessionId}/connect", null, stop);
                    if (ticket.StatusCode != HttpStatusCode.OK)
                    {
                        throw new InvalidOperationException($"ticket: {(int)ticket.StatusCode}");
                    }

                    var url = (await ticket.Content.ReadFromJsonAsync<ConnectResponse>(ApiJson.Options, stop))!.Url;
                    viewer = await RfbViewer.ConnectAsync(balancer, url);
                    await viewer.HandshakeAsync();
                    if (lostAt is { } since)
                    {
                        Gaps.Add(System.Diagnostics.Stopwatch.GetElapsedTime(since));
                    }

                    connected = true;
                    var buffer = new byte[4096];
                    while ((await viewer.Socket.ReceiveAsync(buffer, stop)).MessageType != System.Net.WebSockets.WebSocketMessageType.Close)
                    {
                    }

                    CloseCodes.Add((int?)viewer.Socket.CloseStatus ?? 0);
                    connected = false;
                    lostAt = System.Diagnostics.Stopwatch.GetTimestamp();
                }
                catch (OperationCanceledException) when (stop.IsCancellationRequested)
                {
                    return;
                }
                catch (Exception e) when (e is InvalidOperationException or HttpRequestException or System.Net.WebSockets.WebSocketException or Xunit.Sdk.XunitException)
                {
                    if (connected)
                    {
                        // Dropped without a close: recorded as such (0), which the test refuses.
                        CloseCodes.Add(0);
                        connected = false;
                        lostAt = System.Diagnostics.Stopwatch.GetTimestamp();
                    }

                    await Task.Delay(TimeSpan.FromMilliseconds(100), stop).ContinueWith(_ => { }, TaskScheduler.Default);
                }
                finally
                {
                    viewer?.Dispose();
                }
            }
        }
    }

    [Fact]
    public async Task Ten_failed_logins_spread_over_both_replicas_lock_the_username_on_both()
    {
        // LOGIN_ATTEMPTS_PER_MINUTE keeps its default of 10 in the cluster; every test client is the same loopback address.
        var username = "victim-" + Guid.NewGuid().ToString("N")[..8];
        var clients = cluster.Replicas.Select(r => r.CreateClient()).ToList();
        for (var i = 0; i < 10; i++)
        {
            var answer = await clients[i % 2].PostAsJsonAsync("/api/v1/auth/login", new { username, password = $"guess-{i}" });
            Assert.Equal(HttpStatusCode.Unauthorized, answer.StatusCode);
        }

        foreach (var client in clients)
        {
            var refused = await client.PostAsJsonAsync("/api/v1/auth/login", new { username, password = "guess-11" });
            await refused.AssertProblemAsync(HttpStatusCode.TooManyRequests);
            Assert.True(refused.Headers.RetryAfter?.Delta is { TotalSeconds: > 0 and <= 60 }, $"Retry-After: {refused.Headers.RetryAfter}");
            client.Dispose();
        }
    }

    /// <summary>How long after its commit the session's command of that type was sent to the agent.</summary>
    private async Task<TimeSpan> SendDelayAsync(string sessionId, string commandType)
    {
        await using var connection = new NpgsqlConnection(cluster.ConnectionString);
        var seconds = await connection.ExecuteScalarAsync<double?>(
            "SELECT extract(epoch FROM sent_at - created_at)::float8 FROM agent_commands WHERE session_id = @sessionId AND command_type = @commandType",
            new { sessionId, commandType });
        Assert.True(seconds is not null, $"no {commandType} was sent for {sessionId}");
        return TimeSpan.FromSeconds(seconds.Value);
    }

    private async Task<List<Guid>> AliveReplicasAsync()
    {
        await using var connection = new NpgsqlConnection(cluster.ConnectionString);
        return [.. await connection.QueryAsync<Guid>("SELECT id FROM api_replicas WHERE seen_at > now() - interval '15 seconds' AND NOT draining")];
    }
}

/// <summary>A client of <c>/api/v1/sessions/events</c> that records every session state it is told, in order.</summary>
public sealed class SessionEvents : IAsyncDisposable
{
    private readonly HttpClient client;
    private readonly HttpResponseMessage response;
    private readonly CancellationTokenSource stop = new();
    private readonly List<SessionResponse> received = [];
    private readonly Task reading;

    private SessionEvents(HttpClient client, HttpResponseMessage response, StreamReader reader)
    {
        this.client = client;
        this.response = response;
        reading = ReadAsync(reader);
    }

    public static async Task<SessionEvents> OpenAsync(Uri baseAddress, HttpClient signedIn)
    {
        var client = new HttpClient { BaseAddress = baseAddress, Timeout = Timeout.InfiniteTimeSpan };
        client.DefaultRequestHeaders.Authorization = signedIn.DefaultRequestHeaders.Authorization;
        var response = await client.GetAsync("/api/v1/sessions/events", HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        Assert.Equal(": connected", await reader.ReadLineAsync());
        return new SessionEvents(client, response, reader);
    }

    public List<SessionState> StatesOf(string id)
    {
        lock (received)
        {
            return [.. received.Where(s => s.Id == id).Select(s => s.State)];
        }
    }

    public Task WaitForAsync(string id, SessionState state, TimeSpan? timeout = null) =>
        Eventually.TrueAsync(() => Task.FromResult(StatesOf(id).Contains(state) || reading.IsCompleted), timeout ?? TimeSpan.FromSeconds(30),
            $"an event of session {id} in state {state.ToName()}").ContinueWith(t =>
            {
                t.GetAwaiter().GetResult();
                Assert.True(StatesOf(id).Contains(state), $"the event stream ended before session {id} was {state.ToName()}: {reading.Exception?.GetBaseException().Message}");
            }, TaskScheduler.Default);

    private async Task ReadAsync(StreamReader reader)
    {
        while (await reader.ReadLineAsync(stop.Token) is { } line)
        {
            if (line.StartsWith("data: ", StringComparison.Ordinal))
            {
                var session = System.Text.Json.JsonSerializer.Deserialize<SessionResponse>(line["data: ".Length..], ApiJson.Options)!;
                lock (received)
                {
                    received.Add(session);
                }
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await stop.CancelAsync();
        try
        {
            await reading;
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or HttpRequestException)
        {
            // Closed by the test.
        }

        response.Dispose();
        client.Dispose();
    }
}
