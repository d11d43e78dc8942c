using System.Net;
using System.Net.Http.Json;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Api.Features.Agents;

public sealed class AgentAuthenticationTests(ApiFixture fixture) : IClassFixture<ApiFixture>
{
    [Fact]
    public async Task An_agent_with_its_key_connects_and_shows_online_with_what_it_reported()
    {
        var key = await fixture.Api.RegisterAgentAsync("auth-good");
        await using var agent = await AgentHost.StartAsync(fixture.Api.AgentHubUrl, "auth-good", key);
        await agent.WaitUntilConnectedAsync();

        var view = await fixture.Api.GetAgentAsync("auth-good");
        Assert.Equal("online", view.GetProperty("status").GetString());
        Assert.Equal("local", view.GetProperty("platform").GetString());
        Assert.Equal(StreamSpace.Contracts.AgentProtocol.Version, view.GetProperty("protocol_version").GetInt32());
        Assert.Equal(10, view.GetProperty("capacity").GetProperty("max_sessions").GetInt32());
        Assert.Equal(1, view.GetProperty("heartbeat_interval_seconds").GetInt32());
        Assert.False(view.GetProperty("draining").GetBoolean());
        Assert.True(view.GetProperty("last_heartbeat").GetDateTimeOffset() > DateTimeOffset.UtcNow.AddMinutes(-1));
    }

    [Fact]
    public async Task The_upgrade_is_refused_with_401_for_a_missing_wrong_or_other_agents_key()
    {
        var key = await fixture.Api.RegisterAgentAsync("auth-a");
        await fixture.Api.RegisterAgentAsync("auth-b");

        Assert.Equal(HttpStatusCode.Unauthorized, (await RawAgentSocket.ConnectAsync(fixture.Api.AgentHubUrl, "auth-a", null)).Status);
        Assert.Equal(HttpStatusCode.Unauthorized, (await RawAgentSocket.ConnectAsync(fixture.Api.AgentHubUrl, "auth-a", "ssak_wrong")).Status);
        Assert.Equal(HttpStatusCode.Unauthorized, (await RawAgentSocket.ConnectAsync(fixture.Api.AgentHubUrl, "auth-b", key)).Status);
        Assert.Equal(HttpStatusCode.Unauthorized, (await RawAgentSocket.ConnectAsync(fixture.Api.AgentHubUrl, "no-such-agent", key)).Status);

        var (socket, status) = await RawAgentSocket.ConnectAsync(fixture.Api.AgentHubUrl, "auth-a", key);
        using (socket)
        {
            Assert.Equal(HttpStatusCode.SwitchingProtocols, status);
        }
    }

    [Fact]
    public async Task The_key_is_returned_once_and_only_its_hash_is_stored()
    {
        var key = await fixture.Api.RegisterAgentAsync("auth-once");
        Assert.StartsWith("ssak_", key);
        Assert.True(key.Length >= 43, "the key carries at least 256 bits");

        await using var connection = new Npgsql.NpgsqlConnection(fixture.Api.ConnectionString);
        var stored = await Dapper.SqlMapper.ExecuteScalarAsync<string>(connection, "SELECT key_hash FROM agents WHERE id = 'auth-once'");
        Assert.NotEqual(key, stored);
        Assert.DoesNotContain(key, stored);

        var view = await fixture.Api.GetAgentAsync("auth-once");
        Assert.DoesNotContain(key, view.ToString());
        Assert.False(view.TryGetProperty("key", out _));

        using var admin = await fixture.Api.AdminClientAsync();
        var again = await admin.PostAsJsonAsync("/api/v1/agents", new { id = "auth-once" });
        await again.AssertProblemAsync(HttpStatusCode.Conflict);
    }

    [Fact]
    public async Task Revoking_a_credential_drops_the_live_socket_and_refuses_the_key_afterwards()
    {
        var key = await fixture.Api.RegisterAgentAsync("auth-revoked");
        await using var agent = await AgentHost.StartAsync(fixture.Api.AgentHubUrl, "auth-revoked", key);
        await agent.WaitUntilConnectedAsync();

        using var admin = await fixture.Api.AdminClientAsync();
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync("/api/v1/agents/auth-revoked")).StatusCode);

        await Eventually.TrueAsync(() => Task.FromResult(!agent.Client.IsConnected), TimeSpan.FromSeconds(20), "the revoked agent to be disconnected");
        var view = await fixture.Api.GetAgentAsync("auth-revoked");
        Assert.Equal("offline", view.GetProperty("status").GetString());
        Assert.True(view.GetProperty("revoked").GetBoolean());
        Assert.Equal(HttpStatusCode.Unauthorized, (await RawAgentSocket.ConnectAsync(fixture.Api.AgentHubUrl, "auth-revoked", key)).Status);
    }

    [Fact]
    public async Task Only_admins_manage_agents()
    {
        using var user = await fixture.Api.NewUserClientAsync();
        await (await user.GetAsync("/api/v1/agents")).AssertProblemAsync(HttpStatusCode.Forbidden);
        await (await user.PostAsJsonAsync("/api/v1/agents", new { id = "sneaky" })).AssertProblemAsync(HttpStatusCode.Forbidden);

        using var admin = await fixture.Api.AdminClientAsync();
        await (await admin.PostAsJsonAsync("/api/v1/agents", new { id = "Not Valid!" })).AssertProblemAsync(HttpStatusCode.BadRequest);
        await (await admin.GetAsync("/api/v1/agents/missing-agent")).AssertProblemAsync(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task A_drained_agent_is_marked_draining_and_can_be_resumed()
    {
        await fixture.Api.RegisterAgentAsync("auth-drain");
        using var admin = await fixture.Api.AdminClientAsync();
        var drained = await (await admin.PostAsync("/api/v1/agents/auth-drain/drain", null)).AssertJsonAsync(HttpStatusCode.OK);
        Assert.True(drained.GetProperty("draining").GetBoolean());
        var resumed = await (await admin.DeleteAsync("/api/v1/agents/auth-drain/drain")).AssertJsonAsync(HttpStatusCode.OK);
        Assert.False(resumed.GetProperty("draining").GetBoolean());
    }
}

/// <summary>The deployment-provisioned credential (AppHost, Helm) works for its own agent id only.</summary>
public sealed class ProvisionedAgentTests : IAsyncLifetime
{
    private const string Key = "provisioned-key-0123456789-abcdefghijklmnopqrstuvwxyz";
    private ApiFactory api = null!;

    public async Task InitializeAsync() => api = new ApiFactory(await SharedPostgres.CreateDatabaseAsync(), new Dictionary<string, string?>
    {
        ["PROVISIONED_AGENT_ID"] = "provisioned",
        ["PROVISIONED_AGENT_KEY"] = Key,
    }).Start();

    public async Task DisposeAsync() => await api.DisposeAsync();

    [Fact]
    public async Task The_provisioned_key_connects_as_its_agent_and_as_no_other()
    {
        await api.RegisterAgentAsync("someone-else");
        await using var agent = await AgentHost.StartAsync(api.AgentHubUrl, "provisioned", Key);
        await agent.WaitUntilConnectedAsync();

        Assert.Equal(HttpStatusCode.Unauthorized, (await RawAgentSocket.ConnectAsync(api.AgentHubUrl, "someone-else", Key)).Status);
        Assert.Equal(HttpStatusCode.Unauthorized, (await RawAgentSocket.ConnectAsync(api.AgentHubUrl, "not-registered", Key)).Status);
    }
}
