using Dapper;
using Npgsql;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Api.Features.Agents;

/// <summary>Commands survive a control-plane restart and are carried out once, however often they are delivered.</summary>
public sealed class CommandDeliveryTests
{
    [Fact]
    public async Task A_command_queued_while_the_api_is_down_is_delivered_after_restart_and_carried_out_once()
    {
        var database = await SharedPostgres.CreateDatabaseAsync();
        var port = PostgresServer.FreePort();
        var api = new ApiFactory(database).Start(port);
        var key = await api.RegisterAgentAsync("restart-agent");
        await using var agent = await AgentHost.StartAsync(api.AgentHubUrl, "restart-agent", key);
        await agent.WaitUntilConnectedAsync();

        await api.DisposeAsync();
        await Eventually.TrueAsync(() => Task.FromResult(!agent.Client.IsConnected), TimeSpan.FromSeconds(10), "the agent to notice the API is gone");
        var (sessionId, commandId) = await AgentTestData.QueueStartSessionAsync(database, "restart-agent");

        await using var restarted = new ApiFactory(database).Start(port);
        await agent.WaitUntilConnectedAsync(TimeSpan.FromSeconds(45));
        await Eventually.TrueAsync(async () => (await AgentTestData.SessionAsync(database, sessionId)).State == "running",
            TimeSpan.FromSeconds(30), "the queued session to run");

        var (status, attempts) = await AgentTestData.CommandAsync(database, commandId);
        Assert.Equal("completed", status);
        Assert.Equal(1, attempts);
        Assert.Equal(1, agent.Commands.Executed);
        Assert.Single(await agent.Platform.ListSessionsAsync(CancellationToken.None));
    }

    [Fact]
    public async Task A_duplicate_delivery_gets_the_first_result_and_starts_nothing_new()
    {
        var database = await SharedPostgres.CreateDatabaseAsync();
        await using var api = new ApiFactory(database).Start();
        var key = await api.RegisterAgentAsync("dup-agent");
        await using var agent = await AgentHost.StartAsync(api.AgentHubUrl, "dup-agent", key);
        await agent.WaitUntilConnectedAsync();

        var (sessionId, commandId) = await AgentTestData.QueueStartSessionAsync(database, "dup-agent");
        await api.DeliverAsync("dup-agent");
        await Eventually.TrueAsync(async () => (await AgentTestData.CommandAsync(database, commandId)).Status == "completed",
            TimeSpan.FromSeconds(30), "the command to complete");
        var port = (await agent.Platform.ListSessionsAsync(CancellationToken.None)).Single().PlatformMetadata!.Value.GetProperty("vnc_port").GetInt32();

        // As if the answer had been lost: the control plane still thinks the command is open and sends it again.
        await using (var connection = new NpgsqlConnection(database))
        {
            await connection.ExecuteAsync("UPDATE agent_commands SET status = 'pending', completed_at = NULL WHERE id = @commandId", new { commandId });
        }

        await api.DeliverAsync("dup-agent");
        await Eventually.TrueAsync(async () => (await AgentTestData.CommandAsync(database, commandId)) is ("completed", 2),
            TimeSpan.FromSeconds(10), "the repeated command to be answered");

        Assert.Equal(1, agent.Commands.Executed);
        var session = Assert.Single(await agent.Platform.ListSessionsAsync(CancellationToken.None));
        Assert.Equal(port, session.PlatformMetadata!.Value.GetProperty("vnc_port").GetInt32());
        Assert.Equal("running", (await AgentTestData.SessionAsync(database, sessionId)).State);
    }

    [Fact]
    public async Task A_command_for_an_agent_that_never_answers_fails_at_the_timeout_with_that_reason()
    {
        var database = await SharedPostgres.CreateDatabaseAsync();
        await using var api = new ApiFactory(database, new Dictionary<string, string?> { ["COMMAND_TIMEOUT"] = "2s" }).Start();
        await api.RegisterAgentAsync("never-there");
        var (sessionId, commandId) = await AgentTestData.QueueStartSessionAsync(database, "never-there");

        await Eventually.TrueAsync(async () => (await AgentTestData.CommandAsync(database, commandId)).Status == "failed",
            TimeSpan.FromSeconds(15), "the command to time out");
        var (state, reason) = await AgentTestData.SessionAsync(database, sessionId);
        Assert.Equal("failed", state);
        Assert.Equal("agent never-there did not answer the start_session command within 2s", reason);
    }
}
