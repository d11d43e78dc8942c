using System.Net;
using System.Net.Http.Json;
using Dapper;
using Npgsql;
using StreamSpace.Contracts;
using StreamSpace.Contracts.Api;
using StreamSpace.Tests.Api.Features.Sessions;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Api.Features.Replicas;

/// <summary>Two API processes behind HAProxy on one database, with one local agent dialing the balancer.</summary>
public sealed class ReplicaClusterTests(ReplicaCluster cluster) : IClassFixture<ReplicaCluster>, IAsyncLifetime
{
    public Task InitializeAsync() => cluster.EnsureRunningAsync();

    public Task DisposeAsync() => Task.CompletedTask;

    [Fact]
    public async Task Both_replicas_register_alive_under_ids_of_their_own()
    {
        var ids = await Task.WhenAll(cluster.Replicas.Select(r => r.IdAsync()));
        Assert.Equal(2, (await AliveReplicasAsync()).Intersect(ids).Count());
        Assert.NotEqual(ids[0], ids[1]);
    }

    [Fact]
    public async Task A_ticket_issued_by_one_replica_opens_the_viewer_on_the_other_once_and_only_once()
    {
        var (holder, other) = await cluster.AgentHolderAsync();
        using var viaOther = await cluster.AdminClientAsync(other.BaseAddress);
        var id = (await viaOther.LaunchAsync()).Id;
        await viaOther.WaitForStateAsync(id, SessionState.Running);

        // Issued by the replica that does not hold the agent, redeemed on the one that does: the desktop arrives.
        var url = await viaOther.ConnectUrlAsync(id);
        using (var viewer = await RfbViewer.ConnectAsync(holder.BaseAddress, url))
        {
            var desktop = await viewer.HandshakeAsync();
            Assert.True(desktop.Width > 0 && desktop.Height > 0);
        }

        // Used once, it is gone for every replica.
        foreach (var replica in new[] { holder, other })
        {
            var refused = await Assert.ThrowsAsync<System.Net.WebSockets.WebSocketException>(() => RfbViewer.ConnectAsync(replica.BaseAddress, url));
            Assert.Contains("401", refused.Message);
        }
    }

    [Fact]
    public async Task Commands_made_on_either_replica_reach_the_agent_within_a_second()
    {
        var (holder, other) = await cluster.AgentHolderAsync();
        using var viaOther = await cluster.AdminClientAsync(other.BaseAddress);
        using var viaHolder = await cluster.AdminClientAsync(holder.BaseAddress);

        // The start is committed on the replica without the agent: only the NOTIFY takes it to the holder.
        var id = (await viaOther.LaunchAsync()).Id;
        await viaOther.WaitForStateAsync(id, SessionState.Running);
        Assert.InRange(await SendDelayAsync(id, CommandTypes.StartSession), TimeSpan.Zero, TimeSpan.FromSeconds(1));

        var stopped = await viaHolder.DeleteAsync($"/api/v1/sessions/{id}");
        Assert.Equal(HttpStatusCode.Accepted, stopped.StatusCode);
        await viaOther.WaitForStateAsync(id, SessionState.Stopped);
        Assert.InRange(await SendDelayAsync(id, CommandTypes.StopSession), TimeSpan.Zero, TimeSpan.FromSeconds(1));
    }

    [Fact]
    public async Task A_command_whose_notification_was_lost_is_sent_by_the_sweep_within_5_seconds()
    {
        var (holder, other) = await cluster.AgentHolderAsync();
        using var viaOther = await cluster.AdminClientAsync(other.BaseAddress);

        // The holder listens again 2 s after losing its connection; a start committed now NOTIFYs into the void.
        await cluster.KillListeningConnectionAsync(holder);
        var id = (await viaOther.LaunchAsync()).Id;
        await viaOther.WaitForStateAsync(id, SessionState.Running);
        Assert.InRange(await SendDelayAsync(id, CommandTypes.StartSession), TimeSpan.Zero, TimeSpan.FromSeconds(5));
    }

    /// <summary>How long after its commit the session's command of that type was sent to the agent.</summary>
    private async Task<TimeSpan> SendDelayAsync(string sessionId, string commandType)
    {
        await using var connection = new NpgsqlConnection(cluster.ConnectionString);
        var seconds = await connection.ExecuteScalarAsync<double?>(
            "SELECT extract(epoch FROM sent_at - created_at)::float8 FROM agent_commands WHERE session_id = @sessionId AND command_type = @commandType",
            new { sessionId, commandType });
        Assert.True(seconds is not null, $"no {commandType} was sent for {sessionId}");
        return TimeSpan.FromSeconds(seconds.Value);
    }

    private async Task<List<Guid>> AliveReplicasAsync()
    {
        await using var connection = new NpgsqlConnection(cluster.ConnectionString);
        return [.. await connection.QueryAsync<Guid>("SELECT id FROM api_replicas WHERE seen_at > now() - interval '15 seconds' AND NOT draining")];
    }
}
