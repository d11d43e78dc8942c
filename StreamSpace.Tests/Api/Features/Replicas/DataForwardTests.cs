using System.Buffers.Text;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Dapper;
using Npgsql;
using StreamSpace.Contracts;
using StreamSpace.Contracts.Tunnel;
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

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_data_connection_for_another_alive_replica_reaches_its_registered_data_url_with_its_head_and_bytes_both_ways(bool throughDataPort)
    {
        // A stand-in for the issuing replica: registered and alive, listening where its row says.
        using var issuer = new TcpListener(IPAddress.Loopback, 0);
        issuer.Start();
        var issuerId = await RegisterReplicaAsync($"http://127.0.0.1:{((IPEndPoint)issuer.LocalEndpoint).Port}{DataConnection.Path}", alive: true);
        var entry = throughDataPort ? new Uri(await DataUrlAsync(Cluster.Replicas[0])) : Cluster.Replicas[0].BaseAddress;

        using var agent = new TcpClient();
        await agent.ConnectAsync(entry.Host, entry.Port);
        var toEntry = agent.GetStream();
        var head = Head(entry, issuerId);
        await toEntry.WriteAsync(Encoding.ASCII.GetBytes(head));

        using var forwarded = await issuer.AcceptTcpClientAsync().WaitAsync(TimeSpan.FromSeconds(10));
        var atIssuer = forwarded.GetStream();
        var received = await ReadHeadAsync(atIssuer);
        if (throughDataPort)
        {
            Assert.Equal(head, received);
        }
        else
        {
            // Kestrel keeps no raw copy: the head is rebuilt with every header the agent sent.
            Assert.All(head.Split("\r\n", StringSplitOptions.RemoveEmptyEntries).Skip(1), line => Assert.Contains(line, received, StringComparison.OrdinalIgnoreCase));
        }

        await atIssuer.WriteAsync(Encoding.ASCII.GetBytes($"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: {DataConnection.UpgradeProtocol}\r\n\r\n"));
        Assert.StartsWith("HTTP/1.1 101", await ReadHeadAsync(toEntry));
        await toEntry.WriteAsync("from the agent"u8.ToArray());
        Assert.Equal("from the agent", Encoding.ASCII.GetString(await ReadExactlyAsync(atIssuer, 14)));
        await atIssuer.WriteAsync("from the replica"u8.ToArray());
        Assert.Equal("from the replica", Encoding.ASCII.GetString(await ReadExactlyAsync(toEntry, 16)));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_data_connection_for_a_replica_that_is_not_alive_is_refused_and_forwarded_nowhere(bool throughDataPort)
    {
        using var issuer = new TcpListener(IPAddress.Loopback, 0);
        issuer.Start();
        var issuerId = await RegisterReplicaAsync($"http://127.0.0.1:{((IPEndPoint)issuer.LocalEndpoint).Port}{DataConnection.Path}", alive: false);
        var entry = throughDataPort ? new Uri(await DataUrlAsync(Cluster.Replicas[0])) : Cluster.Replicas[0].BaseAddress;

        using var agent = new TcpClient();
        await agent.ConnectAsync(entry.Host, entry.Port);
        await agent.GetStream().WriteAsync(Encoding.ASCII.GetBytes(Head(entry, issuerId)));
        Assert.StartsWith("HTTP/1.1 401", await ReadHeadAsync(agent.GetStream()));
        Assert.False(issuer.Pending(), "the replica dialed a replica that is not alive");
    }

    private static string Head(Uri entry, Guid issuerId) =>
        $"GET {DataConnection.Path} HTTP/1.1\r\nHost: {entry.Authority}\r\nConnection: Upgrade\r\nUpgrade: {DataConnection.UpgradeProtocol}\r\n" +
        $"Authorization: Bearer {DataConnection.TokenPrefix}{Base64Url.EncodeToString(issuerId.ToByteArray())}.{Base64Url.EncodeToString(Guid.NewGuid().ToByteArray())}\r\n" +
        $"{AgentProtocol.AgentIdHeader}: {ReplicaCluster.AgentId}\r\n{DataConnection.SessionIdHeader}: sess-forwarded\r\n\r\n";

    private async Task<Guid> RegisterReplicaAsync(string dataUrl, bool alive)
    {
        var id = Guid.CreateVersion7();
        await using var connection = new NpgsqlConnection(Cluster.ConnectionString);
        await connection.ExecuteAsync(
            "INSERT INTO api_replicas (id, data_url, version, seen_at) VALUES (@id, @dataUrl, 'test', now() - make_interval(secs => @age))",
            new { id, dataUrl, age = alive ? 0 : 60 });
        return id;
    }

    private async Task<string> DataUrlAsync(ApiReplica replica)
    {
        var replicaId = await replica.IdAsync();
        await using var connection = new NpgsqlConnection(Cluster.ConnectionString);
        return await connection.QuerySingleAsync<string>("SELECT data_url FROM api_replicas WHERE id = @replicaId", new { replicaId });
    }

    /// <summary>Reads one HTTP head byte by byte, up to and including its blank line.</summary>
    private static async Task<string> ReadHeadAsync(Stream stream)
    {
        var head = new StringBuilder();
        var one = new byte[1];
        while (!head.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal))
        {
            Assert.Equal(1, await stream.ReadAsync(one).AsTask().WaitAsync(TimeSpan.FromSeconds(10)));
            head.Append((char)one[0]);
        }

        return head.ToString();
    }

    private static async Task<byte[]> ReadExactlyAsync(Stream stream, int count)
    {
        var buffer = new byte[count];
        await stream.ReadExactlyAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        return buffer;
    }
}
