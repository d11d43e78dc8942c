using System.Diagnostics;
using System.Net;
using Dapper;
using Npgsql;
using StreamSpace.Contracts;
using StreamSpace.Contracts.Api;
using StreamSpace.Tests.Api.Features.Agents;
using StreamSpace.Tests.Api.Features.Sessions;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Api.Features.Diagnostics;

/// <summary>Each fault from the troubleshooting guide, made real, turns its check to warn or fail with the evidence.</summary>
public sealed class DiagnosticsTests
{
    [Fact]
    public async Task A_healthy_stack_reports_all_ok()
    {
        await using var api = new ApiFactory(await SharedPostgres.CreateDatabaseAsync()).Start();
        await using var agent = await AgentHost.StartAsync(api.AgentHubUrl, "healthy-agent", await api.RegisterAgentAsync("healthy-agent"));
        await agent.WaitUntilConnectedAsync();

        var report = await DiagnoseAsync(api);
        Assert.True(report.Status == CheckStatus.Ok, string.Join("; ", report.Checks.Where(c => c.Status != CheckStatus.Ok)));
        Assert.Contains(report.Checks, c => c.Id == "agents.heartbeat:healthy-agent" && c.Status == "ok");
        Assert.Contains(report.Checks, c => c.Id == "auth.admin" && c.Status == "ok");
    }

    [Fact]
    public async Task An_agent_reports_its_own_platform_checks_and_the_url_it_dials()
    {
        await using var api = new ApiFactory(await SharedPostgres.CreateDatabaseAsync()).Start();
        await using var agent = await AgentHost.StartAsync(api.AgentHubUrl, "reporting-agent", await api.RegisterAgentAsync("reporting-agent"));
        await agent.WaitUntilConnectedAsync();

        // The agent sends its checks right after welcome; the report shows them under the agent's name.
        var checks = await Eventually.ValueAsync(async () =>
            (await DiagnoseAsync(api)).Checks is var all && all.Any(c => c.Id == "local.programs:reporting-agent") ? all : null,
            TimeSpan.FromSeconds(10), "the agent's own checks to reach the report");
        var programs = Assert.Single(checks, c => c.Id == "local.programs:reporting-agent");
        Assert.Equal("ok", programs.Status);
        Assert.Contains("Xvnc", programs.Evidence);
        var isolation = Assert.Single(checks, c => c.Id == "local.isolation:reporting-agent");
        Assert.Equal("ok", isolation.Status);
        var sound = Assert.Single(checks, c => c.Id == "local.sound:reporting-agent");
        Assert.Equal("ok", sound.Status);
        Assert.Contains("libopus.so.0", sound.Evidence);
        var url = Assert.Single(checks, c => c.Id == "network.control_plane_url:reporting-agent");
        Assert.Equal("ok", url.Status);
        Assert.Contains($"the agent dials {api.AgentHubUrl}", url.Evidence);
        Assert.Contains($"arrive as ws://{api.AgentHubUrl.Authority}/agent/ws", url.Evidence);
    }

    [Fact]
    public async Task An_agent_without_isolation_fails_the_isolation_check()
    {
        await using var api = new ApiFactory(await SharedPostgres.CreateDatabaseAsync()).Start();
        await using var agent = await AgentHost.StartAsync(api.AgentHubUrl, "shared-agent", await api.RegisterAgentAsync("shared-agent"),
            settings: new Dictionary<string, string?> { ["LOCAL_ISOLATION"] = "none" });
        await agent.WaitUntilConnectedAsync();

        var checks = await Eventually.ValueAsync(async () =>
            (await DiagnoseAsync(api)).Checks is var all && all.Any(c => c.Id == "local.isolation:shared-agent") ? all : null,
            TimeSpan.FromSeconds(10), "the agent's isolation check to reach the report");
        var isolation = Assert.Single(checks, c => c.Id == "local.isolation:shared-agent");
        Assert.Equal("fail", isolation.Status);
        Assert.Contains("sessions are not isolated from the agent or from each other", isolation.Evidence);
        Assert.Equal(CheckStatus.Fail, (await DiagnoseAsync(api)).Status);
    }

    [Fact]
    public async Task An_agent_dialling_the_public_tls_host_in_plain_text_fails_the_url_check()
    {
        var database = await SharedPostgres.CreateDatabaseAsync();
        // The API advertises TLS on the very host the agent dials with ws://: the agent's key would cross the network in clear.
        await using var api = new ApiFactory(database, new Dictionary<string, string?> { ["PUBLIC_URL"] = "https://127.0.0.1" }).Start();
        Assert.Equal("127.0.0.1", api.AgentHubUrl.Host);
        await using var agent = await AgentHost.StartAsync(api.AgentHubUrl, "plaintext-agent", await api.RegisterAgentAsync("plaintext-agent"));
        await agent.WaitUntilConnectedAsync();

        var url = Assert.Single((await DiagnoseAsync(api)).Checks, c => c.Id == "network.control_plane_url:plaintext-agent");
        Assert.Equal("fail", url.Status);
        Assert.Contains("PUBLIC_URL advertises wss://127.0.0.1/agent/ws", url.Evidence);
        Assert.Contains("set CONTROL_PLANE_URL to wss://127.0.0.1/agent/ws", url.Fix);
    }

    [Fact]
    public async Task A_stopped_agent_fails_its_heartbeat_check_and_its_sessions_check()
    {
        await using var api = new ApiFactory(await SharedPostgres.CreateDatabaseAsync()).Start();
        var agent = await AgentHost.StartAsync(api.AgentHubUrl, "stopped-agent", await api.RegisterAgentAsync("stopped-agent"));
        await agent.WaitUntilConnectedAsync();
        using var admin = await api.AdminClientAsync();
        var id = (await admin.LaunchAsync()).Id;
        await admin.WaitForStateAsync(id, SessionState.Running);
        await agent.DisposeAsync();

        var checks = (await DiagnoseAsync(api)).Checks;
        var heartbeat = Assert.Single(checks, c => c.Id == "agents.heartbeat:stopped-agent");
        Assert.Equal("fail", heartbeat.Status);
        Assert.Contains("CONTROL_PLANE_URL", heartbeat.Fix);
        Assert.Contains(checks, c => c.Id == "sessions.agents" && c.Status == "fail" && c.Evidence.Contains("stopped-agent (offline)"));
    }

    [Fact]
    public async Task An_agent_clock_ten_seconds_ahead_warns_about_token_expiry()
    {
        await using var api = new ApiFactory(await SharedPostgres.CreateDatabaseAsync()).Start();
        var key = await api.RegisterAgentAsync("skewed-agent");
        using var socket = await RawAgentSocket.ConnectAcceptedAsync(api.AgentHubUrl, "skewed-agent", key);
        await socket.SendHelloAsync(heartbeatSeconds: 30);
        await socket.ReceiveAsync(TimeSpan.FromSeconds(5));
        await socket.SendAsync(new HeartbeatMessage(DateTimeOffset.UtcNow.AddSeconds(10), new AgentCapacity(5, 0), []));

        await Eventually.TrueAsync(async () => (await DiagnoseAsync(api)).Checks.Any(c => c.Id == "agents.clock_skew:skewed-agent"),
            TimeSpan.FromSeconds(5), "the skew to be recorded");
        var skew = (await DiagnoseAsync(api)).Checks.Single(c => c.Id == "agents.clock_skew:skewed-agent");
        Assert.Equal("warn", skew.Status);
        Assert.Contains("ahead", skew.Evidence);
        Assert.Contains("expired", skew.Fix);
    }

    [Fact]
    public async Task A_session_left_pending_fails_the_stuck_check_naming_it()
    {
        var database = await SharedPostgres.CreateDatabaseAsync();
        await using var api = new ApiFactory(database).Start();
        await api.RegisterAgentAsync("absent-agent");
        var (sessionId, _) = await AgentTestData.QueueStartSessionAsync(database, "absent-agent");
        await using (var connection = new NpgsqlConnection(database))
        {
            await connection.ExecuteAsync("UPDATE sessions SET updated_at = now() - interval '2 minutes' WHERE id = @sessionId", new { sessionId });
        }

        var stuck = (await DiagnoseAsync(api)).Checks.Single(c => c.Id == "sessions.stuck");
        Assert.Equal("fail", stuck.Status);
        Assert.Contains($"{sessionId} pending", stuck.Evidence);
        Assert.Contains("absent-agent", stuck.Evidence);
    }

    [Fact]
    public async Task An_agent_with_a_wrong_key_is_reported_as_refused()
    {
        await using var api = new ApiFactory(await SharedPostgres.CreateDatabaseAsync()).Start();
        await api.RegisterAgentAsync("wrong-key-agent");
        await using var agent = await AgentHost.StartAsync(api.AgentHubUrl, "wrong-key-agent", "ssak_not-the-right-key");

        await Eventually.TrueAsync(async () => (await DiagnoseAsync(api)).Checks.Single(c => c.Id == "agents.refused").Status == "warn",
            TimeSpan.FromSeconds(10), "the refusal to be reported");
        var refused = (await DiagnoseAsync(api)).Checks.Single(c => c.Id == "agents.refused");
        Assert.Contains("wrong-key-agent", refused.Evidence);
        Assert.Contains("wrong key (401)", refused.Evidence);
        Assert.Contains("AGENT_KEY", refused.Fix);
    }

    [Fact]
    public async Task A_vnc_server_that_does_not_answer_fails_the_probe()
    {
        await using var api = new ApiFactory(await SharedPostgres.CreateDatabaseAsync()).Start();
        await using var agent = await AgentHost.StartAsync(api.AgentHubUrl, "probe-agent", await api.RegisterAgentAsync("probe-agent"));
        await agent.WaitUntilConnectedAsync();
        using var admin = await api.AdminClientAsync();
        var id = (await admin.LaunchAsync()).Id;
        var session = await admin.WaitForStateAsync(id, SessionState.Running);
        Assert.Contains((await DiagnoseAsync(api, probe: true)).Checks, c => c.Id == $"sessions.vnc:{id}" && c.Status == "ok");

        // Freeze the VNC server: its port still accepts connections, but nothing answers.
        var port = session.PlatformMetadata.GetProperty("vnc_port").GetInt32();
        var xvnc = (await ProcessRunner.RunCheckedAsync("pgrep", "-f", $"rfbport {port}")).Trim().Split('\n')[0];
        await ProcessRunner.RunCheckedAsync("kill", "-STOP", xvnc);
        try
        {
            var probe = (await DiagnoseAsync(api, probe: true)).Checks.Single(c => c.Id == $"sessions.vnc:{id}");
            Assert.Equal("fail", probe.Status);
            Assert.Contains("VNC server does not answer", probe.Fix);
        }
        finally
        {
            await ProcessRunner.RunCheckedAsync("kill", "-CONT", xvnc);
        }
    }

    [Fact]
    public async Task A_database_whose_migrations_are_behind_fails_the_schema_check()
    {
        var database = await SharedPostgres.CreateDatabaseAsync();
        await using var api = new ApiFactory(database).Start();
        await using (var connection = new NpgsqlConnection(database))
        {
            await connection.ExecuteAsync("DELETE FROM schema_migrations WHERE version = (SELECT max(version) FROM schema_migrations)");
        }

        var schema = (await DiagnoseAsync(api)).Checks.Single(c => c.Id == "database.schema");
        Assert.Equal("fail", schema.Status);
        Assert.Contains("this API needs", schema.Evidence);
        Assert.Contains("Restart the API", schema.Fix);
    }

    [Fact]
    public async Task An_openid_provider_the_api_cannot_reach_fails_the_sign_in_check_and_names_oidc_issuer()
    {
        // Nothing listens there: the provider is down, or OIDC_ISSUER is mistyped.
        var issuer = $"http://127.0.0.1:{PostgresServer.FreePort()}";
        await using var api = new ApiFactory(await SharedPostgres.CreateDatabaseAsync(), new Dictionary<string, string?>
        {
            ["OIDC_ISSUER"] = issuer,
            ["OIDC_CLIENT_ID"] = "streamspace",
            ["LOCAL_LOGIN"] = "false",
        }).Start();

        var check = Assert.Single((await DiagnoseAsync(api)).Checks, c => c.Id == "auth.sign_in");

        Assert.Equal(CheckStatus.Fail, check.Status);
        Assert.Contains($"passwords for '{ApiFactory.AdminUsername}' only (LOCAL_LOGIN=false) and the OpenID provider {issuer}", check.Evidence, StringComparison.Ordinal);
        Assert.Contains("OIDC_ISSUER", check.Fix, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Only_admins_run_diagnostics()
    {
        await using var api = new ApiFactory(await SharedPostgres.CreateDatabaseAsync()).Start();
        using var user = await api.NewUserClientAsync();
        await (await user.GetAsync("/api/v1/admin/diagnostics")).AssertProblemAsync(HttpStatusCode.Forbidden);
    }

    private static async Task<DiagnosticsReport> DiagnoseAsync(ApiFactory api, bool probe = false)
    {
        using var admin = await api.AdminClientAsync();
        return await (await admin.GetAsync($"/api/v1/admin/diagnostics{(probe ? "?probe=true" : "")}")).AssertJsonAsync<DiagnosticsReport>(HttpStatusCode.OK);
    }
}
