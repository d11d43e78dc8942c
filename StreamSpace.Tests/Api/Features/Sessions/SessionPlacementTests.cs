using System.Net;
using System.Net.Http.Json;
using Dapper;
using Npgsql;
using StreamSpace.Contracts;
using StreamSpace.Contracts.Api;
using StreamSpace.Tests.Api.Features.Agents;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Api.Features.Sessions;

public sealed class SessionPlacementTests
{
    [Fact]
    public async Task With_no_online_agent_a_launch_is_503_and_leaves_no_session_behind()
    {
        var database = await SharedPostgres.CreateDatabaseAsync();
        await using var api = new ApiFactory(database).Start();
        await api.RegisterAgentAsync("registered-but-offline");
        using var user = await api.NewUserClientAsync();

        var response = await user.PostAsJsonAsync("/api/v1/sessions", new { template = "xterm" });
        var problem = await response.AssertProblemAsync(HttpStatusCode.ServiceUnavailable);
        Assert.Equal("No available agents.", problem.GetProperty("title").GetString());

        await using var connection = new NpgsqlConnection(database);
        Assert.Equal(0, await connection.ExecuteScalarAsync<int>("SELECT count(*) FROM sessions"));
        Assert.Equal(0, await connection.ExecuteScalarAsync<int>("SELECT count(*) FROM agent_commands"));
    }

    [Fact]
    public async Task An_unknown_template_is_400_naming_the_field_and_the_quota_is_a_clear_409()
    {
        var database = await SharedPostgres.CreateDatabaseAsync();
        await using var api = new ApiFactory(database, new Dictionary<string, string?> { ["SESSION_QUOTA"] = "1" }).Start();
        await using var agent = await AgentHost.StartAsync(api.AgentHubUrl, "quota-agent", await api.RegisterAgentAsync("quota-agent"));
        await agent.WaitUntilConnectedAsync();
        using var user = await api.NewUserClientAsync();

        var unknown = await user.PostAsJsonAsync("/api/v1/sessions", new { template = "no-such-template" });
        Assert.Contains("template", (await unknown.AssertProblemAsync(HttpStatusCode.BadRequest)).ToString());

        await user.LaunchAsync();
        var second = await user.PostAsJsonAsync("/api/v1/sessions", new { template = "xterm" });
        var problem = await second.AssertProblemAsync(HttpStatusCode.Conflict);
        Assert.Contains("SESSION_QUOTA=1", problem.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task A_drained_agent_gets_no_new_sessions()
    {
        var database = await SharedPostgres.CreateDatabaseAsync();
        await using var api = new ApiFactory(database).Start();
        await using var agent = await AgentHost.StartAsync(api.AgentHubUrl, "drained-agent", await api.RegisterAgentAsync("drained-agent"));
        await agent.WaitUntilConnectedAsync();
        using var admin = await api.AdminClientAsync();
        Assert.Equal(HttpStatusCode.OK, (await admin.PostAsync("/api/v1/agents/drained-agent/drain", null)).StatusCode);

        await (await admin.PostAsJsonAsync("/api/v1/sessions", new { template = "xterm" })).AssertProblemAsync(HttpStatusCode.ServiceUnavailable);
    }

    [Fact]
    public async Task A_killed_and_restarted_agent_reports_its_running_session_again()
    {
        var database = await SharedPostgres.CreateDatabaseAsync();
        await using var api = new ApiFactory(database).Start();
        var key = await api.RegisterAgentAsync("phoenix");
        var first = await AgentHost.StartAsync(api.AgentHubUrl, "phoenix", key);
        await first.WaitUntilConnectedAsync();
        using var admin = await api.AdminClientAsync();
        var id = (await admin.LaunchAsync()).Id;
        await admin.WaitForStateAsync(id, SessionState.Running);

        await first.StopAsync();
        await using var second = await AgentHost.StartAsync(api.AgentHubUrl, "phoenix", key, first.DataDirectory);
        await second.WaitUntilConnectedAsync();

        var reported = Assert.Single(await second.Platform.ListSessionsAsync(CancellationToken.None));
        Assert.Equal((id, SessionState.Running), (reported.SessionId, reported.State));
        Assert.Equal(SessionState.Running, (await (await admin.GetAsync($"/api/v1/sessions/{id}")).AssertJsonAsync<SessionResponse>(HttpStatusCode.OK)).State);
        using var viewer = await RfbViewer.ConnectAsync(api.BaseAddress, await admin.ConnectUrlAsync(id));
        Assert.Equal(id, (await viewer.HandshakeAsync()).Name);
    }
}
