using System.Net;
using Dapper;
using Npgsql;
using StreamSpace.Contracts;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Api.Features.Agents;

/// <summary>A revoked credential stays revoked: across restarts, on every API instance, and at every point of a connection.</summary>
public sealed class AgentRevocationTests(ApiFixture fixture) : IClassFixture<ApiFixture>
{
    private const int RevokedCloseCode = 4002;

    [Fact]
    public async Task A_revoked_provisioned_key_stays_revoked_after_a_restart_and_only_a_new_key_enables_the_agent()
    {
        const string agentId = "provisioned";
        const string oldKey = "provisioned-key-old-0123456789-abcdefghijklmnopqrstuvwxyz";
        const string newKey = "provisioned-key-new-0123456789-abcdefghijklmnopqrstuvwxyz";
        var database = await SharedPostgres.CreateDatabaseAsync();
        ApiFactory Api(string key) => new ApiFactory(database, new Dictionary<string, string?>
        {
            ["PROVISIONED_AGENT_ID"] = agentId,
            ["PROVISIONED_AGENT_KEY"] = key,
        }).Start();

        await using (var first = Api(oldKey))
        {
            await using var agent = await AgentHost.StartAsync(first.AgentHubUrl, agentId, oldKey);
            await agent.WaitUntilConnectedAsync();
            using var admin = await first.AdminClientAsync();
            Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"/api/v1/agents/{agentId}")).StatusCode);
            await Eventually.TrueAsync(() => Task.FromResult(!agent.Client.IsConnected), TimeSpan.FromSeconds(20), "the revoked agent to be disconnected");
        }

        // The deployment still gives the revoked key: the restart must not undo the admin's revocation.
        await using (var restarted = Api(oldKey))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await RawAgentSocket.ConnectAsync(restarted.AgentHubUrl, agentId, oldKey)).Status);
            Assert.True((await restarted.GetAgentAsync(agentId)).GetProperty("revoked").GetBoolean());
        }

        await using (var rekeyed = Api(newKey))
        {
            await using var agent = await AgentHost.StartAsync(rekeyed.AgentHubUrl, agentId, newKey);
            await agent.WaitUntilConnectedAsync();
            Assert.False((await rekeyed.GetAgentAsync(agentId)).GetProperty("revoked").GetBoolean());
            Assert.Equal(HttpStatusCode.Unauthorized, (await RawAgentSocket.ConnectAsync(rekeyed.AgentHubUrl, agentId, oldKey)).Status);
        }

        // Going back to the once-revoked key neither revives it nor takes the new key away.
        await using var rolledBack = Api(oldKey);
        Assert.Equal(HttpStatusCode.Unauthorized, (await RawAgentSocket.ConnectAsync(rolledBack.AgentHubUrl, agentId, oldKey)).Status);
        var (socket, status) = await RawAgentSocket.ConnectAsync(rolledBack.AgentHubUrl, agentId, newKey);
        socket?.Dispose();
        Assert.Equal(HttpStatusCode.SwitchingProtocols, status);
    }

    [Fact]
    public async Task A_revocation_between_the_upgrade_and_hello_closes_the_socket_at_hello()
    {
        var key = await fixture.Api.RegisterAgentAsync("rev-before-hello");
        using var socket = await RawAgentSocket.ConnectAcceptedAsync(fixture.Api.AgentHubUrl, "rev-before-hello", key);

        using (var admin = await fixture.Api.AdminClientAsync())
        {
            Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync("/api/v1/agents/rev-before-hello")).StatusCode);
        }

        await socket.SendHelloAsync(heartbeatSeconds: 60);
        var (closeStatus, _, before) = await socket.ReceiveUntilCloseAsync(TimeSpan.FromSeconds(20));
        Assert.Equal(RevokedCloseCode, (int)closeStatus!);
        Assert.Empty(before);
        Assert.Equal("offline", (await fixture.Api.GetAgentAsync("rev-before-hello")).GetProperty("status").GetString());
    }

    [Fact]
    public async Task A_heartbeat_closes_a_connection_whose_credential_was_revoked_or_replaced_without_a_notification()
    {
        // Written straight to the database, as if this instance had missed the revocation's NOTIFY: only the
        // heartbeat's own check can close these sockets (heartbeats every 60 s leave the liveness monitor out of it).
        var revokedKey = await fixture.Api.RegisterAgentAsync("rev-beat-revoked");
        var replacedKey = await fixture.Api.RegisterAgentAsync("rev-beat-replaced");
        using var revoked = await HelloAsync("rev-beat-revoked", revokedKey);
        using var replaced = await HelloAsync("rev-beat-replaced", replacedKey);
        await using (var connection = new NpgsqlConnection(fixture.Api.ConnectionString))
        {
            await connection.ExecuteAsync("UPDATE agents SET revoked_at = now() WHERE id = 'rev-beat-revoked'");
            await connection.ExecuteAsync("UPDATE agents SET key_hash = repeat('1', 64) WHERE id = 'rev-beat-replaced'");
        }

        foreach (var socket in new[] { revoked, replaced })
        {
            await socket.SendHeartbeatAsync();
            var (status, _) = await socket.WaitForCloseAsync(TimeSpan.FromSeconds(20));
            Assert.Equal(RevokedCloseCode, (int)status!);
        }
    }

    [Fact]
    public async Task Revoking_on_one_api_instance_closes_the_agent_connected_to_another()
    {
        var database = await SharedPostgres.CreateDatabaseAsync();
        await using var a = new ApiFactory(database).Start();
        await using var b = new ApiFactory(database).Start();
        await WaitUntilListeningAsync(database, instances: 2);

        var key = await a.RegisterAgentAsync("rev-elsewhere");
        using var socket = await RawAgentSocket.ConnectAcceptedAsync(b.AgentHubUrl, "rev-elsewhere", key);
        await socket.SendHelloAsync(heartbeatSeconds: 60);
        Assert.IsType<WelcomeMessage>(await socket.ReceiveAsync(TimeSpan.FromSeconds(20)));

        using (var admin = await a.AdminClientAsync())
        {
            Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync("/api/v1/agents/rev-elsewhere")).StatusCode);
        }

        // No heartbeat is due for a minute: only instance A's revocation notice reaches instance B in time.
        var (status, reason) = await socket.WaitForCloseAsync(TimeSpan.FromSeconds(20));
        Assert.Equal(RevokedCloseCode, (int)status!);
        Assert.Contains("revoked", reason);
    }

    private async Task<RawAgentSocket> HelloAsync(string agentId, string key)
    {
        var socket = await RawAgentSocket.ConnectAcceptedAsync(fixture.Api.AgentHubUrl, agentId, key);
        await socket.SendHelloAsync(heartbeatSeconds: 60);
        Assert.IsType<WelcomeMessage>(await socket.ReceiveAsync(TimeSpan.FromSeconds(20)));
        return socket;
    }

    /// <summary>
    /// Until each API instance's listening connection has run its LISTENs, a notification would pass it by. That
    /// connection is the only one to go idle after a LISTEN (its last statement, whichever channel is listed last).
    /// </summary>
    private static async Task WaitUntilListeningAsync(string database, int instances) =>
        await Eventually.TrueAsync(async () =>
        {
            await using var connection = new NpgsqlConnection(database);
            return await connection.ExecuteScalarAsync<int>(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state = 'idle' AND query LIKE 'LISTEN %'") >= instances;
        }, TimeSpan.FromSeconds(10), $"{instances} API instances to listen for revocations");
}
