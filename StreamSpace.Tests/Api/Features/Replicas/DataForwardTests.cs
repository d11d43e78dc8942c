using Dapper;
using Npgsql;
using StreamSpace.Contracts;
using StreamSpace.Tests.Api.Features.Sessions;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Api.Features.Replicas;

/// <summary>The cluster of <see cref="ReplicaCluster"/>, with an agent that cannot reach the replicas' own data URLs.</summary>
public sealed class ForwardingReplicaCluster : IAsyncLifetime
{
    // As an agent outside the cluster: every data connection goes through the balancer to /agent/data.
    public ReplicaCluster Cluster { get; } = new() { AgentSettings = new Dictionary<string, string?> { ["AGENT_DIRECT_DATA"] = "off" } };

    public Task InitializeAsync() => Cluster.InitializeAsync();

    public Task DisposeAsync() => Cluster.DisposeAsync();
}

/// <summary>The forward hop (design §2.2): a data connection that the balancer brings to the wrong replica still reaches its viewer.</summary>
public sealed class DataForwardTests(ForwardingReplicaCluster fixture) : IClassFixture<ForwardingReplicaCluster>
{
    private ReplicaCluster Cluster => fixture.Cluster;

    [Fact]
    public async Task Ten_viewers_whose_data_connections_come_through_the_balancer_all_reach_the_desktop()
    {
        using var admin = await Cluster.AdminClientAsync(Cluster.Balancer.BaseAddress);
        var id = (await admin.LaunchAsync()).Id;
        await admin.WaitForStateAsync(id, SessionState.Running);

        // Each viewer waits on one replica, its agent's /agent/data lands on either: about half must be forwarded.
        var viewers = await Task.WhenAll(Enumerable.Range(0, 10).Select(async _ =>
        {
            var viewer = await RfbViewer.ConnectAsync(Cluster.Balancer.BaseAddress, await admin.ConnectUrlAsync(id));
            var desktop = await viewer.HandshakeAsync();
            var (rectangles, _, _) = await viewer.RequestFullUpdateAsync(desktop);
            return (viewer, rectangles);
        }));
        try
        {
            Assert.All(viewers, v => Assert.True(v.rectangles > 0, "a viewer's framebuffer update had no rectangles"));
            var forwarded = 0.0;
            foreach (var replica in Cluster.Replicas)
            {
                using var scraper = replica.CreateClient();
                forwarded += PrometheusText.Parse(await scraper.GetStringAsync("/metrics")).Sum("streamspace_data_connections_forwarded_total");
            }

            Assert.True(forwarded > 0, "no data connection was forwarded, so this test did not cross replicas");
        }
        finally
        {
            foreach (var (viewer, _) in viewers)
            {
                viewer.Dispose();
            }
        }
    }

    [Fact]
    public async Task A_replica_is_registered_with_its_data_url_by_the_time_it_serves()
    {
        // A new replica, checked the moment /health answers: before that, no forward could find where it listens.
        await using var third = await ApiReplica.StartAsync("c", PostgresServer.FreePort(), Cluster.ReplicaEnvironment("c"));
        var replicaId = await third.IdAsync();
        await using var connection = new NpgsqlConnection(Cluster.ConnectionString);
        var dataUrl = await connection.QuerySingleOrDefaultAsync<string?>("SELECT data_url FROM api_replicas WHERE id = @replicaId", new { replicaId });
        Assert.StartsWith("http://127.0.0.1:", dataUrl);
    }
}
