using System.Net;
using Microsoft.Extensions.DependencyInjection;
using StreamSpace.Api.Features.Agents;
using StreamSpace.Contracts;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Api.Features.Agents;

public sealed class AgentHubTests(ApiFixture fixture) : IClassFixture<ApiFixture>
{
    [Fact]
    public async Task Heartbeats_move_last_heartbeat_forward()
    {
        var key = await fixture.Api.RegisterAgentAsync("hub-beats");
        await using var agent = await AgentHost.StartAsync(fixture.Api.AgentHubUrl, "hub-beats", key);
        await agent.WaitUntilConnectedAsync();

        var first = (await fixture.Api.GetAgentAsync("hub-beats")).GetProperty("last_heartbeat").GetDateTimeOffset();
        await Eventually.TrueAsync(async () =>
            (await fixture.Api.GetAgentAsync("hub-beats")).GetProperty("last_heartbeat").GetDateTimeOffset() > first,
            TimeSpan.FromSeconds(20), "a later heartbeat");
    }

    [Fact]
    public async Task Admins_see_how_many_active_sessions_each_agent_runs()
    {
        await fixture.Api.RegisterAgentAsync("hub-count");
        await fixture.Api.RegisterAgentAsync("hub-idle");
        var (first, _) = await AgentTestData.QueueStartSessionAsync(fixture.Api.ConnectionString, "hub-count");
        await AgentTestData.QueueStartSessionAsync(fixture.Api.ConnectionString, "hub-count");
        await using (var connection = new Npgsql.NpgsqlConnection(fixture.Api.ConnectionString))
        {
            await Dapper.SqlMapper.ExecuteAsync(connection, "UPDATE sessions SET state = 'stopped' WHERE id = @first", new { first });
        }

        Assert.Equal(1, (await fixture.Api.GetAgentAsync("hub-count")).GetProperty("active_sessions").GetInt32());
        using var admin = await fixture.Api.AdminClientAsync();
        var agents = await (await admin.GetAsync("/api/v1/agents")).AssertJsonAsync(HttpStatusCode.OK);
        Assert.Equal(1, agents.EnumerateArray().Single(a => a.GetProperty("id").GetString() == "hub-count").GetProperty("active_sessions").GetInt32());
        Assert.Equal(0, agents.EnumerateArray().Single(a => a.GetProperty("id").GetString() == "hub-idle").GetProperty("active_sessions").GetInt32());
    }

    [Fact]
    public async Task A_silent_agent_goes_offline_after_three_missed_heartbeats_and_online_again_when_it_returns()
    {
        var key = await fixture.Api.RegisterAgentAsync("hub-silent");
        var socket = await RawAgentSocket.ConnectAcceptedAsync(fixture.Api.AgentHubUrl, "hub-silent", key);
        using (socket)
        {
            await socket.SendHelloAsync(heartbeatSeconds: 1);
            Assert.IsType<WelcomeMessage>(await socket.ReceiveAsync(TimeSpan.FromSeconds(20)));
            Assert.Equal("online", (await fixture.Api.GetAgentAsync("hub-silent")).GetProperty("status").GetString());

            // No heartbeats: after 3 intervals the hub closes the socket and the agent reads offline.
            var (status, reason) = await socket.WaitForCloseAsync(TimeSpan.FromSeconds(20));
            Assert.Equal(4003, (int)status!);
            Assert.Contains("no heartbeat", reason);
        }

        Assert.Equal("offline", (await fixture.Api.GetAgentAsync("hub-silent")).GetProperty("status").GetString());

        await using var agent = await AgentHost.StartAsync(fixture.Api.AgentHubUrl, "hub-silent", key);
        await agent.WaitUntilConnectedAsync();
        Assert.Equal("online", (await fixture.Api.GetAgentAsync("hub-silent")).GetProperty("status").GetString());
    }

    [Fact]
    public async Task Closing_the_socket_marks_the_agent_offline_at_once()
    {
        // Heartbeats a minute apart: three missed ones would take three minutes, so offline within the wait below can
        // only come from the closed socket.
        var key = await fixture.Api.RegisterAgentAsync("hub-closes");
        var agent = await AgentHost.StartAsync(fixture.Api.AgentHubUrl, "hub-closes", key,
            settings: new Dictionary<string, string?> { ["HEARTBEAT_INTERVAL"] = "60s" });
        await agent.WaitUntilConnectedAsync();
        Assert.Equal("online", (await fixture.Api.GetAgentAsync("hub-closes")).GetProperty("status").GetString());
        await agent.DisposeAsync();

        await Eventually.TrueAsync(async () => (await fixture.Api.GetAgentAsync("hub-closes")).GetProperty("status").GetString() == "offline",
            TimeSpan.FromSeconds(30), "the agent to read offline");
    }

    [Theory]
    [InlineData("truncated", "{\"type\":\"heartbeat\",\"sent_at\":")]
    [InlineData("state-number", "{\"type\":\"session_state\",\"session\":{\"session_id\":\"sess-x\",\"state\":42}}")]
    [InlineData("state-unknown", "{\"type\":\"session_state\",\"session\":{\"session_id\":\"sess-x\",\"state\":\"exploded\"}}")]
    public async Task A_malformed_frame_closes_that_agent_with_1008_and_another_agent_keeps_working(string name, string frame)
    {
        var goodKey = await fixture.Api.RegisterAgentAsync($"hub-good-{name}");
        var badKey = await fixture.Api.RegisterAgentAsync($"hub-bad-{name}");
        await using var good = await AgentHost.StartAsync(fixture.Api.AgentHubUrl, $"hub-good-{name}", goodKey);
        await good.WaitUntilConnectedAsync();

        var bad = await RawAgentSocket.ConnectAcceptedAsync(fixture.Api.AgentHubUrl, $"hub-bad-{name}", badKey);
        using (bad)
        {
            await bad.SendHelloAsync();
            await bad.ReceiveAsync(TimeSpan.FromSeconds(20));
            await bad.SendTextAsync(frame);
            var (status, reason) = await bad.WaitForCloseAsync(TimeSpan.FromSeconds(20));
            Assert.Equal(1008, (int)status!);
            Assert.Contains("not a valid message", reason);
        }

        // The other agent is still connected and still carries out commands.
        Assert.True(good.Client.IsConnected);
        var (sessionId, _) = await AgentTestData.QueueStartSessionAsync(fixture.Api.ConnectionString, $"hub-good-{name}");
        await fixture.Api.DeliverAsync($"hub-good-{name}");
        await Eventually.TrueAsync(async () => (await AgentTestData.SessionAsync(fixture.Api.ConnectionString, sessionId)).State == "running",
            TimeSpan.FromSeconds(30), "the good agent's session to run");
    }

    [Fact]
    public async Task An_oversized_frame_closes_the_socket_with_1008()
    {
        var key = await fixture.Api.RegisterAgentAsync("hub-huge");
        var socket = await RawAgentSocket.ConnectAcceptedAsync(fixture.Api.AgentHubUrl, "hub-huge", key);
        using (socket)
        {
            await socket.SendHelloAsync();
            await socket.ReceiveAsync(TimeSpan.FromSeconds(20));
            await socket.SendTextAsync(new string(' ', AgentProtocol.MaxTextFrameBytes + 10));
            var (status, reason) = await socket.WaitForCloseAsync(TimeSpan.FromSeconds(20));
            Assert.Equal(1008, (int)status!);
            Assert.Contains("larger than", reason);
        }
    }

    [Fact]
    public async Task An_unsupported_protocol_version_is_refused_naming_the_supported_ones()
    {
        var key = await fixture.Api.RegisterAgentAsync("hub-old");
        var socket = await RawAgentSocket.ConnectAcceptedAsync(fixture.Api.AgentHubUrl, "hub-old", key);
        using (socket)
        {
            await socket.SendHelloAsync(protocolVersion: 99);
            var (status, reason) = await socket.WaitForCloseAsync(TimeSpan.FromSeconds(20));
            Assert.Equal(4004, (int)status!);
            Assert.Equal("protocol version 99 is not supported; supported: 1, 2, 3, 4", reason);
        }
    }

    [Fact]
    public async Task A_second_connection_of_the_same_agent_replaces_the_first_with_a_clear_reason()
    {
        var key = await fixture.Api.RegisterAgentAsync("hub-twice");
        var first = await RawAgentSocket.ConnectAcceptedAsync(fixture.Api.AgentHubUrl, "hub-twice", key);
        using (first)
        {
            await first.SendHelloAsync(heartbeatSeconds: 30);
            await first.ReceiveAsync(TimeSpan.FromSeconds(20));

            // A connection that only probes (no hello, like `doctor --agent`) does not displace the agent: while it is
            // open, the agent's commands still reach the first connection.
            using (await RawAgentSocket.ConnectAcceptedAsync(fixture.Api.AgentHubUrl, "hub-twice", key))
            {
                var (_, commandId) = await AgentTestData.QueueStartSessionAsync(fixture.Api.ConnectionString, "hub-twice");
                await fixture.Api.DeliverAsync("hub-twice");
                Assert.Equal(commandId, Assert.IsType<CommandMessage>(await first.ReceiveAsync(TimeSpan.FromSeconds(10))).CommandId);
            }

            using var second = await RawAgentSocket.ConnectAcceptedAsync(fixture.Api.AgentHubUrl, "hub-twice", key);
            await second.SendHelloAsync(heartbeatSeconds: 30);
            Assert.IsType<WelcomeMessage>(await second.ReceiveAsync(TimeSpan.FromSeconds(20)));
            var (closeStatus, reason) = await first.WaitForCloseAsync(TimeSpan.FromSeconds(20));
            Assert.Equal(4001, (int)closeStatus!);
            Assert.Contains("replaced by a newer connection", reason);
        }
    }

    [Fact]
    public async Task A_replaced_connection_that_ends_after_its_successors_hello_leaves_the_agent_online()
    {
        var key = await fixture.Api.RegisterAgentAsync("hub-late-close");
        using var first = await RawAgentSocket.ConnectAcceptedAsync(fixture.Api.AgentHubUrl, "hub-late-close", key);
        await first.SendHelloAsync(heartbeatSeconds: 30);
        Assert.IsType<WelcomeMessage>(await first.ReceiveAsync(TimeSpan.FromSeconds(20)));
        var firstConnection = await ConnectionIdAsync("hub-late-close");

        using var second = await RawAgentSocket.ConnectAcceptedAsync(fixture.Api.AgentHubUrl, "hub-late-close", key);
        await second.SendHelloAsync(heartbeatSeconds: 30);
        Assert.IsType<WelcomeMessage>(await second.ReceiveAsync(TimeSpan.FromSeconds(20)));

        // The first connection's end, as the hub records it when that end comes after the second's hello (the first
        // closed by itself just as the agent reconnected): the agent, connected through the second, stays online.
        await fixture.Api.Services.GetRequiredService<AgentStore>().MarkOfflineAsync("hub-late-close", firstConnection, CancellationToken.None);
        Assert.Equal("online", (await fixture.Api.GetAgentAsync("hub-late-close")).GetProperty("status").GetString());
    }

    private async Task<Guid> ConnectionIdAsync(string agentId)
    {
        await using var connection = new Npgsql.NpgsqlConnection(fixture.Api.ConnectionString);
        return await Dapper.SqlMapper.QuerySingleAsync<Guid>(connection, "SELECT connection_id FROM agents WHERE id = @agentId", new { agentId });
    }

    [Fact]
    public async Task Agents_that_reconnect_all_at_once_are_all_welcomed_while_the_api_stays_healthy()
    {
        // What an API restart looks like to the hub: every agent's handshake at the same moment.
        const int count = 60;
        var ids = Enumerable.Range(0, count).Select(i => $"hub-storm-{i:D2}").ToList();
        var keys = new List<string>();
        foreach (var id in ids)
        {
            keys.Add(await fixture.Api.RegisterAgentAsync(id));
        }

        var sockets = await Task.WhenAll(ids.Zip(keys, async (id, key) =>
        {
            var socket = await RawAgentSocket.ConnectAcceptedAsync(fixture.Api.AgentHubUrl, id, key);
            await socket.SendHelloAsync(heartbeatSeconds: 30);
            return socket;
        }));
        try
        {
            using var client = fixture.Api.CreateClient();
            var health = client.GetAsync("/health");
            foreach (var socket in sockets)
            {
                Assert.IsType<WelcomeMessage>(await socket.ReceiveAsync(TimeSpan.FromSeconds(30)));
            }

            Assert.Equal(HttpStatusCode.OK, (await health).StatusCode);
            using var admin = await fixture.Api.AdminClientAsync();
            var agents = await (await admin.GetAsync("/api/v1/agents")).AssertJsonAsync(HttpStatusCode.OK);
            Assert.Equal(count, agents.EnumerateArray().Count(a =>
                a.GetProperty("id").GetString()!.StartsWith("hub-storm-", StringComparison.Ordinal) && a.GetProperty("status").GetString() == "online"));
        }
        finally
        {
            foreach (var socket in sockets)
            {
                socket.Dispose();
            }
        }
    }
}
