using System.Buffers.Binary;
using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using StreamSpace.Agent.Platforms;
using StreamSpace.Api.Features.Replicas;
using StreamSpace.Api.Features.Sessions.Vnc;
using StreamSpace.Contracts;
using StreamSpace.Contracts.Tunnel;
using StreamSpace.Tests.Api.Features.Agents;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Api.Features.Sessions;

/// <summary>The API, one agent whose sessions' VNC server is a <see cref="PatternVncServer"/>, and one running session.</summary>
public sealed class PatternSessionFixture : IAsyncLifetime
{
    public ApiFactory Api { get; private set; } = null!;

    public AgentHost Agent { get; private set; } = null!;

    public PatternVncServer Server { get; } = new();

    public HttpClient Admin { get; private set; } = null!;

    public string SessionId { get; private set; } = "";

    public async Task InitializeAsync()
    {
        Api = new ApiFactory(await SharedPostgres.CreateDatabaseAsync()).Start();
        Agent = await PatternAgentAsync(Api, "pattern-agent", Server);
        Admin = await Api.AdminClientAsync();
        SessionId = (await Admin.LaunchAsync()).Id;
        await Admin.WaitForStateAsync(SessionId, SessionState.Running);
    }

    public static async Task<AgentHost> PatternAgentAsync(ApiFactory api, string agentId, PatternVncServer server, IReadOnlyDictionary<string, string?>? settings = null)
    {
        var agent = await AgentHost.StartAsync(api.AgentHubUrl, agentId, await api.RegisterAgentAsync(agentId), settings: settings,
            services: s => s.AddSingleton<ISessionPlatform>(sp => new PatternVncPlatform(sp.GetRequiredService<StreamSpace.Agent.Platforms.Local.LocalPlatform>(), server)));
        await agent.WaitUntilConnectedAsync();
        return agent;
    }

    public async Task DisposeAsync()
    {
        Admin.Dispose();
        await Agent.DisposeAsync();
        await Api.DisposeAsync();
        await Server.DisposeAsync();
    }
}

public sealed class DataConnectionTests(PatternSessionFixture fixture) : IClassFixture<PatternSessionFixture>
{
    [Fact]
    public async Task Fifty_concurrent_viewers_each_receive_their_own_pattern_byte_for_byte()
    {
        await AssertPatternsAsync(fixture.Api, fixture.Admin, fixture.SessionId, viewers: 50, bytes: 512 * 1024);
    }

    [Fact]
    public async Task A_stalled_viewer_holds_back_only_itself_and_the_api_relays_little_for_it()
    {
        using var stalled = await PatternViewer.OpenAsync(fixture.Api, fixture.Admin, fixture.SessionId);
        using var busy = await PatternViewer.OpenAsync(fixture.Api, fixture.Admin, fixture.SessionId);
        const int asked = 64 * 1024 * 1024;
        await stalled.AskAsync(asked);

        // The other viewer of the same session, on the same agent, gets all it asks for while the first reads nothing.
        await busy.AskAsync(16 * 1024 * 1024);
        await busy.ReadPatternAsync(16 * 1024 * 1024);

        // What the API sent the stalled viewer is bounded by socket buffers, not by what the server had for it: the
        // rest waits upstream, held back by TCP, and the relay holds one buffer for it.
        var viewers = (await (await fixture.Admin.GetAsync($"/api/v1/sessions/{fixture.SessionId}/viewers")).Content.ReadFromJsonAsync<List<ViewerBytes>>())!;
        Assert.True(viewers.Count >= 2, $"{viewers.Count} viewers listed");
        var busiest = viewers.MaxBy(v => v.Bytes)!;
        Assert.True(busiest.Bytes >= 16 * 1024 * 1024, $"the busy viewer is listed with {busiest.Bytes} bytes");
        Assert.All(viewers.Where(v => v != busiest), v => Assert.True(v.Bytes < 24L * 1024 * 1024, $"the API relayed {v.Bytes} bytes to a viewer that read none"));

        // And nothing was lost: the stalled viewer reads its pattern intact from the start.
        await stalled.ReadPatternAsync(4 * 1024 * 1024);
    }

    [Fact]
    public async Task Tickets_and_data_tokens_do_not_stand_in_for_each_other_and_a_token_works_once()
    {
        var streams = fixture.Api.Services.GetRequiredService<PendingStreams>();
        var dataUrl = new Uri(fixture.Api.Services.GetRequiredService<ReplicaIdentity>().DataUrl!);
        var agentId = "pattern-agent";

        // A viewer's ticket on either data endpoint.
        var ticket = (await fixture.Admin.ConnectUrlAsync(fixture.SessionId)).Split("ticket=")[1];
        Assert.Equal(401, await RawDataRequestAsync(dataUrl, Uri.UnescapeDataString(ticket), agentId, fixture.SessionId));
        Assert.Equal(401, await RawDataRequestAsync(new Uri(fixture.Api.BaseAddress, DataConnection.Path), Uri.UnescapeDataString(ticket), agentId, fixture.SessionId));

        // A data token as a viewer's ticket.
        var pending = streams.Expect(fixture.SessionId, agentId);
        var refused = await Assert.ThrowsAsync<WebSocketException>(() => RfbViewer.ConnectAsync(fixture.Api.BaseAddress, $"/vnc/{fixture.SessionId}?ticket={Uri.EscapeDataString(pending.Token)}"));
        Assert.Contains("401", refused.Message);

        // The token names its agent and session: another pair is refused, and the viewer waiting on it learns why.
        Assert.Equal(401, await RawDataRequestAsync(dataUrl, pending.Token, "another-agent", fixture.SessionId));
        var failure = await Assert.ThrowsAsync<DataConnectionFailedException>(() => pending.Arrival);
        Assert.Equal("the data connection was refused", failure.Message);

        // A fresh token opens once, then never again.
        var once = streams.Expect(fixture.SessionId, agentId);
        Assert.Equal(101, await RawDataRequestAsync(dataUrl, once.Token, agentId, fixture.SessionId));
        (await once.Arrival).Finish();
        Assert.Equal(401, await RawDataRequestAsync(dataUrl, once.Token, agentId, fixture.SessionId));
    }

    [Fact]
    public async Task A_data_token_older_than_ten_seconds_is_refused()
    {
        var clock = new ShiftableClock();
        await using var api = new ApiFactory(await SharedPostgres.CreateDatabaseAsync(), configureServices: s => s.AddSingleton<TimeProvider>(clock)).Start();
        var pending = api.Services.GetRequiredService<PendingStreams>().Expect("sess-any", "some-agent");
        clock.Shift = DataConnection.TokenLifetime + TimeSpan.FromSeconds(1);
        Assert.Equal(401, await RawDataRequestAsync(new Uri(api.Services.GetRequiredService<ReplicaIdentity>().DataUrl!), pending.Token, "some-agent", "sess-any"));
    }

    [Fact]
    public async Task A_failure_to_reach_the_vnc_server_reaches_the_viewer_as_4502_with_the_reason()
    {
        await using var server = new PatternVncServer();
        await using var api = new ApiFactory(await SharedPostgres.CreateDatabaseAsync()).Start();
        await using var agent = await PatternSessionFixture.PatternAgentAsync(api, "unreachable-agent", server);
        using var admin = await api.AdminClientAsync();
        var id = (await admin.LaunchAsync()).Id;
        await admin.WaitForStateAsync(id, SessionState.Running);
        await server.DisposeAsync();

        using var viewer = await RfbViewer.ConnectAsync(api.BaseAddress, await admin.ConnectUrlAsync(id));
        var (status, reason) = await viewer.WaitForCloseAsync();
        Assert.Equal(4502, status);
        Assert.StartsWith("could not reach the session's VNC server: ", reason);
    }

    [Theory]
    [InlineData("AGENT_SPLICE", "on")]
    [InlineData("AGENT_DATA_PATH", "mux")]
    public async Task The_splice_and_mux_paths_carry_every_byte(string setting, string value)
    {
        await using var server = new PatternVncServer();
        await using var api = new ApiFactory(await SharedPostgres.CreateDatabaseAsync()).Start();
        await using var agent = await PatternSessionFixture.PatternAgentAsync(api, "fallback-agent", server, new Dictionary<string, string?> { [setting] = value });
        using var admin = await api.AdminClientAsync();
        var id = (await admin.LaunchAsync()).Id;
        await admin.WaitForStateAsync(id, SessionState.Running);
        await AssertPatternsAsync(api, admin, id, viewers: 10, bytes: 256 * 1024);
    }

    [Fact]
    public async Task A_template_with_a_closed_clipboard_direction_is_never_placed_on_a_version_1_agent()
    {
        await using var server = new PatternVncServer();
        await using var api = new ApiFactory(await SharedPostgres.CreateDatabaseAsync()).Start();
        // AGENT_DATA_PATH=mux makes the agent speak protocol 1, as an agent from before tunnel v2 does: it would start
        // Xvnc without the template's clipboard settings.
        await using var agent = await PatternSessionFixture.PatternAgentAsync(api, "v1-agent", server, new Dictionary<string, string?> { ["AGENT_DATA_PATH"] = "mux" });
        using var admin = await api.AdminClientAsync();
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync("/api/v1/templates",
            new { name = "no-copy-out", display_name = "No copying out", command = "xterm", clipboard_to_browser = false })).StatusCode);

        var refused = await admin.PostAsJsonAsync("/api/v1/sessions", new { template = "no-copy-out" });
        Assert.Contains("agent protocol 2", (await refused.AssertProblemAsync(HttpStatusCode.ServiceUnavailable)).ToString());

        // The same agent still runs templates that ask nothing of it.
        var id = (await admin.LaunchAsync()).Id;
        await admin.WaitForStateAsync(id, SessionState.Running);
    }

    [Fact]
    public async Task An_agent_that_cannot_reach_the_replicas_data_port_falls_back_to_agent_data_on_the_api_port()
    {
        await using var server = new PatternVncServer();
        // A data URL no agent can reach: every data connection must come through /agent/data on the API's own port.
        await using var api = new ApiFactory(await SharedPostgres.CreateDatabaseAsync(), new Dictionary<string, string?> { ["REPLICA_ADDRESS"] = "replica.invalid" }).Start();
        await using var agent = await PatternSessionFixture.PatternAgentAsync(api, "fallback-url-agent", server);
        using var admin = await api.AdminClientAsync();
        var id = (await admin.LaunchAsync()).Id;
        await admin.WaitForStateAsync(id, SessionState.Running);
        Assert.StartsWith("http://replica.invalid:", api.Services.GetRequiredService<ReplicaIdentity>().DataUrl);
        await AssertPatternsAsync(api, admin, id, viewers: 5, bytes: 256 * 1024);
    }

    [Fact]
    public async Task A_stopping_replica_closes_its_viewers_with_4307_and_refuses_new_ones()
    {
        await using var server = new PatternVncServer();
        await using var api = new ApiFactory(await SharedPostgres.CreateDatabaseAsync()).Start();
        await using var agent = await PatternSessionFixture.PatternAgentAsync(api, "drain-agent", server);
        using var admin = await api.AdminClientAsync();
        var id = (await admin.LaunchAsync()).Id;
        await admin.WaitForStateAsync(id, SessionState.Running);
        using var viewer = await PatternViewer.OpenAsync(api, admin, id);

        await api.Services.GetRequiredService<ViewerDrain>().CloseAllAsync(new CancellationTokenSource(TimeSpan.FromSeconds(10)).Token);
        var (status, reason) = await viewer.WaitForCloseAsync();
        Assert.Equal(4307, status);
        Assert.Equal("replica stopping", reason);
        Assert.Empty(await (await admin.GetAsync($"/api/v1/sessions/{id}/viewers")).Content.ReadFromJsonAsync<List<ViewerBytes>>() ?? []);
        var refused = await Assert.ThrowsAsync<WebSocketException>(() => RfbViewer.ConnectAsync(api.BaseAddress, $"/vnc/{id}?ticket=any"));
        Assert.Contains("503", refused.Message);
    }

    [Fact]
    public async Task A_viewer_keeps_streaming_while_the_agents_control_connection_drops_and_comes_back()
    {
        await using var server = new PatternVncServer();
        await using var api = new ApiFactory(await SharedPostgres.CreateDatabaseAsync()).Start();
        await using var agent = await PatternSessionFixture.PatternAgentAsync(api, "moving-agent", server);
        using var admin = await api.AdminClientAsync();
        var id = (await admin.LaunchAsync()).Id;
        await admin.WaitForStateAsync(id, SessionState.Running);
        using var viewer = await PatternViewer.OpenAsync(api, admin, id);
        // More than every socket buffer on the way holds, so most of it must cross after the control socket is gone.
        await viewer.AskAsync(64 * 1024 * 1024);
        await viewer.ReadPatternAsync(1024 * 1024);

        // The control socket closes, as when its replica goes away; the viewer's bytes never depended on it.
        var connectionId = await AgentConnectionIdAsync(api, "moving-agent");
        await api.Services.GetRequiredService<StreamSpace.Api.Features.Agents.Hub.AgentHub>()
            .DisconnectAsync("moving-agent", StreamSpace.Contracts.AgentCloseCodes.HeartbeatsMissed, "the test closed it");
        // The agent may be back before any request could see it offline (it retries within a second): a new connection is the sign.
        await Eventually.TrueAsync(async () => (await api.GetAgentAsync("moving-agent")).GetProperty("status").GetString() == "online" &&
            await AgentConnectionIdAsync(api, "moving-agent") is { } current && current != connectionId,
            TimeSpan.FromSeconds(40), "the agent to reconnect");
        await viewer.ReadPatternAsync(63 * 1024 * 1024);
        Assert.Equal(1, server.Connections);
    }

    [Fact]
    public async Task An_agent_restart_closes_its_viewers_with_4503()
    {
        await using var api = new ApiFactory(await SharedPostgres.CreateDatabaseAsync()).Start();
        var key = await api.RegisterAgentAsync("restart-agent");
        var first = await AgentHost.StartAsync(api.AgentHubUrl, "restart-agent", key);
        await first.WaitUntilConnectedAsync();
        using var admin = await api.AdminClientAsync();
        var id = (await admin.LaunchAsync()).Id;
        await admin.WaitForStateAsync(id, SessionState.Running);
        using var viewer = await RfbViewer.ConnectAsync(api.BaseAddress, await admin.ConnectUrlAsync(id));
        Assert.Equal(id, (await viewer.HandshakeAsync()).Name);

        // The agent goes away with its sessions left running, as a crashed or restarted agent does, and comes back.
        await first.StopAsync();
        var (status, reason) = await viewer.WaitForCloseAsync();
        await using var second = await AgentHost.StartAsync(api.AgentHubUrl, "restart-agent", key, first.DataDirectory);
        await second.WaitUntilConnectedAsync();
        Assert.True(status == 4503, $"closed with {status} {reason}");
    }

    [Fact]
    public async Task Two_hundred_viewers_that_close_mid_stream_leave_no_descriptor_or_splice_thread_behind_in_the_agent()
    {
        await using var api = new ApiFactory(await SharedPostgres.CreateDatabaseAsync()).Start();
        await using var agent = AgentProcess.Start(api.AgentHubUrl, "fd-agent", await api.RegisterAgentAsync("fd-agent"),
            new Dictionary<string, string> { ["AGENT_SPLICE"] = "on" });
        await Eventually.TrueAsync(async () => (await api.GetAgentAsync("fd-agent")).GetProperty("status").GetString() == "online",
            TimeSpan.FromSeconds(30), "the agent process to connect");
        using var admin = await api.AdminClientAsync();
        var id = (await admin.LaunchAsync()).Id;
        await admin.WaitForStateAsync(id, SessionState.Running);
        try
        {
            // One viewer first, so whatever the agent sets up once (pools, the first connection's buffers) is in the baseline.
            await ViewAndLeaveMidStreamAsync(api, admin, id, abort: false);
            await Eventually.TrueAsync(() => Task.FromResult(!agent.ThreadNames().Contains("vnc splice")), TimeSpan.FromSeconds(10), "the first viewer's splice threads to end");
            var descriptors = agent.OpenDescriptors();
            var threads = agent.ThreadNames().Count;

            var spliceThreadsSeen = 0;
            for (var batch = 0; batch < 10; batch++)
            {
                var viewers = Enumerable.Range(0, 20).Select(i => ViewAndLeaveMidStreamAsync(api, admin, id, abort: i % 2 == 0)).ToList();
                spliceThreadsSeen = Math.Max(spliceThreadsSeen, agent.ThreadNames().Count(n => n == "vnc splice"));
                await Task.WhenAll(viewers);
            }

            Assert.True(spliceThreadsSeen > 0, "no viewer took the splice path");
            await Eventually.TrueAsync(() => Task.FromResult(agent.OpenDescriptors() <= descriptors && !agent.ThreadNames().Contains("vnc splice")),
                TimeSpan.FromSeconds(20), $"the agent's descriptors to return to {descriptors} (now {agent.OpenDescriptors()}) and its splice threads to end");
            await Eventually.TrueAsync(() => Task.FromResult(agent.ThreadNames().Count <= threads), TimeSpan.FromSeconds(60),
                $"the agent's threads to return to {threads} (now {agent.ThreadNames().Count})");
        }
        catch (Exception e) when (e is not TimeoutException)
        {
            // What the agent logged says which viewer failed and why.
            throw new InvalidOperationException(agent.Log, e);
        }
        finally
        {
            await admin.DeleteAsync($"/api/v1/sessions/{id}");
            await admin.WaitForStateAsync(id, SessionState.Stopped);
        }
    }

    private static async Task ViewAndLeaveMidStreamAsync(ApiFactory api, HttpClient admin, string id, bool abort)
    {
        using var viewer = await RfbViewer.ConnectAsync(api.BaseAddress, await admin.ConnectUrlAsync(id));
        await viewer.HandshakeAsync();
        // A Raw 320x200 rectangle is 256 KB; the viewer leaves after its first bytes, with the rest still on the way.
        await viewer.UseRawEncodingAsync();
        await viewer.RequestFullUpdateAsync(new RfbDesktop(320, 200, ""));
        if (abort)
        {
            viewer.Socket.Abort();
        }
        else
        {
            await viewer.Socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "bye", CancellationToken.None);
        }
    }

    private static async Task AssertPatternsAsync(ApiFactory api, HttpClient admin, string sessionId, int viewers, int bytes)
    {
        var opened = new List<PatternViewer>();
        try
        {
            for (var i = 0; i < viewers; i++)
            {
                opened.Add(await PatternViewer.OpenAsync(api, admin, sessionId));
            }

            await Task.WhenAll(opened.Select(async viewer =>
            {
                await viewer.AskAsync(bytes);
                await viewer.ReadPatternAsync(bytes);
            }));
        }
        finally
        {
            opened.ForEach(v => v.Dispose());
        }
    }

    /// <summary>One HTTP/1.1 data connection request, as the agent sends it; returns the status code.</summary>
    private static async Task<Guid?> AgentConnectionIdAsync(ApiFactory api, string agentId)
    {
        await using var connection = new Npgsql.NpgsqlConnection(api.ConnectionString);
        return await Dapper.SqlMapper.QuerySingleOrDefaultAsync<Guid?>(connection, "SELECT connection_id FROM agents WHERE id = @agentId", new { agentId });
    }

    private static async Task<int> RawDataRequestAsync(Uri url, string token, string agentId, string sessionId)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(url.Host, url.Port);
        var stream = client.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(
            $"GET {DataConnection.Path} HTTP/1.1\r\nHost: {url.Authority}\r\nConnection: Upgrade\r\nUpgrade: {DataConnection.UpgradeProtocol}\r\n" +
            $"Authorization: Bearer {token}\r\n{AgentProtocol.AgentIdHeader}: {agentId}\r\n{DataConnection.SessionIdHeader}: {sessionId}\r\n\r\n"));
        using var reader = new StreamReader(stream, Encoding.ASCII);
        var statusLine = await reader.ReadLineAsync() ?? "";
        return int.Parse(statusLine.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
    }

    private sealed record ViewerBytes(Guid Id, long Bytes);

    /// <summary>A viewer of the pattern server: greets as noVNC does, asks for its seed's pattern and checks every byte.</summary>
    private sealed class PatternViewer(ClientWebSocket socket, ulong seed) : IDisposable
    {
        private readonly byte[] buffer = new byte[128 * 1024];
        private readonly byte[] expected = new byte[128 * 1024];
        private long offset;

        public static async Task<PatternViewer> OpenAsync(ApiFactory api, HttpClient admin, string sessionId)
        {
            var rfb = await RfbViewer.ConnectAsync(api.BaseAddress, await admin.ConnectUrlAsync(sessionId));
            Assert.Equal("RFB 003.008\n", Encoding.ASCII.GetString(await rfb.ReadAsync(12)));
            await rfb.SendAsync(Encoding.ASCII.GetBytes("RFB 003.008\n"));
            Assert.Equal([1, 1], await rfb.ReadAsync(2));
            await rfb.SendAsync([1]);
            Assert.Equal([0, 0, 0, 0], await rfb.ReadAsync(4));
            return new PatternViewer(rfb.Socket, (ulong)Random.Shared.NextInt64());
        }

        public Task AskAsync(int bytes)
        {
            var request = new byte[12];
            BinaryPrimitives.WriteUInt64BigEndian(request, seed);
            BinaryPrimitives.WriteUInt32BigEndian(request.AsSpan(8), (uint)bytes);
            return socket.SendAsync(request, WebSocketMessageType.Binary, true, CancellationToken.None);
        }

        public async Task ReadPatternAsync(int bytes)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            var end = offset + bytes;
            while (offset < end)
            {
                var result = await socket.ReceiveAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, end - offset)), timeout.Token);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    throw new WebSocketException($"closed after {offset} bytes: {(int?)socket.CloseStatus} {socket.CloseStatusDescription}");
                }

                PatternVncServer.Fill(seed, offset, expected.AsSpan(0, result.Count));
                var mismatch = buffer.AsSpan(0, result.Count).CommonPrefixLength(expected.AsSpan(0, result.Count));
                Assert.True(mismatch == result.Count, $"byte {offset + mismatch} is not this viewer's");
                offset += result.Count;
            }
        }

        public async Task<(int? Status, string? Reason)> WaitForCloseAsync()
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
            while ((await socket.ReceiveAsync(buffer, timeout.Token)).MessageType != WebSocketMessageType.Close)
            {
            }

            return ((int?)socket.CloseStatus, socket.CloseStatusDescription);
        }

        public void Dispose() => socket.Dispose();
    }

    /// <summary>The system clock, moved forward on demand, for what a test cannot wait out.</summary>
    private sealed class ShiftableClock : TimeProvider
    {
        public TimeSpan Shift { get; set; }

        public override DateTimeOffset GetUtcNow() => base.GetUtcNow() + Shift;
    }
}
