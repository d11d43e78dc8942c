using System.Net.Sockets;
using Dapper;
using Npgsql;
using StreamSpace.Contracts;
using StreamSpace.Tests.Api.Features.Agents;
using StreamSpace.Tests.Api.Features.Sessions;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Agent.Commands;

public sealed class OrphanReaperTests
{
    [Fact]
    public async Task A_session_the_control_plane_no_longer_owns_is_stopped_after_the_grace_period_and_owned_ones_keep_running()
    {
        await using var api = new ApiFactory(await SharedPostgres.CreateDatabaseAsync()).Start();
        var key = await api.RegisterAgentAsync("reaping-agent");
        var settings = new Dictionary<string, string?> { ["ORPHAN_GRACE_PERIOD"] = "2s" };
        var first = await AgentHost.StartAsync(api.AgentHubUrl, "reaping-agent", key, settings: settings);
        await first.WaitUntilConnectedAsync();
        using var admin = await api.AdminClientAsync();
        var kept = (await admin.LaunchAsync()).Id;
        var orphan = (await admin.LaunchAsync()).Id;
        await admin.WaitForStateAsync(kept, SessionState.Running);
        await admin.WaitForStateAsync(orphan, SessionState.Running);
        var orphanPort = (await first.Platform.FindVncAsync(orphan, CancellationToken.None))!.Port;

        // While the agent is away, the session disappears from the control plane (say, a database restored from a backup).
        await first.StopAsync();
        await using (var connection = new NpgsqlConnection(api.ConnectionString))
        {
            Assert.Equal(1, await connection.ExecuteAsync("DELETE FROM sessions WHERE id = @orphan", new { orphan }));
        }

        await using var second = await AgentHost.StartAsync(api.AgentHubUrl, "reaping-agent", key, first.DataDirectory, settings);
        await second.WaitUntilConnectedAsync();
        await Eventually.TrueAsync(async () => await second.Platform.FindVncAsync(orphan, CancellationToken.None) is null,
            TimeSpan.FromSeconds(20), "the unowned session to be stopped");
        await Eventually.TrueAsync(() => Task.FromResult(!Listens(orphanPort)), TimeSpan.FromSeconds(10), "the unowned session's Xvnc to exit");

        Assert.NotNull(await second.Platform.FindVncAsync(kept, CancellationToken.None));
        Assert.Equal(SessionState.Running, (await admin.WaitForStateAsync(kept, SessionState.Running)).State);
    }

    private static bool Listens(int port)
    {
        try
        {
            using var client = new TcpClient();
            client.Connect("127.0.0.1", port);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
