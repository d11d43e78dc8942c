using Microsoft.Extensions.DependencyInjection;
using StreamSpace.Api.Features.Sessions;
using StreamSpace.Contracts;
using StreamSpace.Tests.Api.Features.Agents;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Api.Features.Replicas;

/// <summary>Two API instances on one database, with hand-driven agent connections to either.</summary>
public sealed class ReplicaRoutingTests : IAsyncLifetime
{
    private ApiFactory a = null!;
    private ApiFactory b = null!;

    public async Task InitializeAsync()
    {
        var database = await SharedPostgres.CreateDatabaseAsync();
        a = new ApiFactory(database).Start();
        b = new ApiFactory(database).Start();
    }

    public async Task DisposeAsync()
    {
        await a.DisposeAsync();
        await b.DisposeAsync();
    }

    [Fact]
    public async Task An_agent_that_says_hello_on_another_replica_has_its_older_connection_closed_with_4001()
    {
        var key = await a.RegisterAgentAsync("moved-agent");
        using var onA = await RawAgentSocket.ConnectAcceptedAsync(a.AgentHubUrl, "moved-agent", key);
        await onA.SendHelloAsync(heartbeatSeconds: 30);
        Assert.IsType<WelcomeMessage>(await onA.ReceiveAsync(TimeSpan.FromSeconds(10)));

        using var onB = await RawAgentSocket.ConnectAcceptedAsync(b.AgentHubUrl, "moved-agent", key);
        await onB.SendHelloAsync(heartbeatSeconds: 30);
        Assert.IsType<WelcomeMessage>(await onB.ReceiveAsync(TimeSpan.FromSeconds(10)));

        // A half-open connection left on A would take B's commands into a dead socket: A closes it.
        var (status, reason) = await onA.WaitForCloseAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(AgentCloseCodes.Replaced, status);
        Assert.Contains("replaced by a newer connection", reason);
        Assert.Equal("online", (await a.GetAgentAsync("moved-agent")).GetProperty("status").GetString());
    }

    [Fact]
    public async Task A_stream_open_asked_on_the_replica_without_the_agent_reaches_the_agent_through_the_replica_that_holds_it()
    {
        var key = await a.RegisterAgentAsync("relayed-agent");
        using var onB = await RawAgentSocket.ConnectAcceptedAsync(b.AgentHubUrl, "relayed-agent", key);
        await onB.SendHelloAsync(heartbeatSeconds: 30);
        Assert.IsType<WelcomeMessage>(await onB.ReceiveAsync(TimeSpan.FromSeconds(10)));

        var open = new StreamOpenMessage(Guid.NewGuid(), "sess-relayed", "dt1.token", "http://127.0.0.1:1/agent/data", DateTimeOffset.UtcNow.AddSeconds(10));
        var agents = a.Services.GetRequiredService<ISessionAgents>();
        Assert.True(await agents.OpenStreamAsync("relayed-agent", open, CancellationToken.None));
        Assert.Equal(open, Assert.IsType<StreamOpenMessage>(await onB.ReceiveAsync(TimeSpan.FromSeconds(5))));

        // An agent that no replica holds cannot be asked: the viewer is told at once.
        await a.RegisterAgentAsync("absent-agent");
        Assert.False(await agents.OpenStreamAsync("absent-agent", open, CancellationToken.None));
    }
}
