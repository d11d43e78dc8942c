using System.Net;
using StreamSpace.Contracts;
using StreamSpace.Contracts.Api;
using StreamSpace.Tests.Api.Features.Sessions;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Api.Features.Users;

/// <summary>Deleting a user with running sessions, against a real local agent running real Xvnc sessions.</summary>
public sealed class DeleteUserTests(SessionFixture fixture) : IClassFixture<SessionFixture>
{
    [Fact]
    public async Task Deleting_a_user_stops_their_running_sessions_at_the_agent_and_audits_the_stops_and_the_deletion()
    {
        using var admin = await fixture.Api.AdminClientAsync();
        using var user = await fixture.Api.NewUserClientAsync();
        var userId = await user.UserIdAsync();
        var sessions = new List<(string Id, int Port)>();
        for (var i = 0; i < 2; i++)
        {
            var id = (await user.LaunchAsync()).Id;
            var running = await user.WaitForStateAsync(id, SessionState.Running);
            sessions.Add((id, running.PlatformMetadata.GetProperty("vnc_port").GetInt32()));
        }

        var processes = await ProcessesAsync();
        Assert.All(sessions, s => Assert.Contains(processes, line => line.Contains($"-rfbport {s.Port}", StringComparison.Ordinal)));

        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"/api/v1/users/{userId}")).StatusCode);

        // The user is gone, but their sessions stay for admins, and the agent still gets and carries out the stops.
        foreach (var (id, _) in sessions)
        {
            var stopped = await admin.WaitForStateAsync(id, SessionState.Stopped);
            Assert.Equal(userId, stopped.UserId);
        }

        var left = await fixture.Agent.Platform.ListSessionsAsync(CancellationToken.None);
        Assert.DoesNotContain(left, s => sessions.Any(mine => mine.Id == s.SessionId));
        processes = await ProcessesAsync();
        Assert.All(sessions, s => Assert.DoesNotContain(processes, line =>
            line.Contains($"-rfbport {s.Port}", StringComparison.Ordinal) || line.Contains(s.Id, StringComparison.Ordinal)));

        foreach (var (id, _) in sessions)
        {
            var audit = await (await admin.GetAsync($"/api/v1/audit?target_type=session&target_id={id}")).AssertJsonAsync<AuditPage>(HttpStatusCode.OK);
            var changes = audit.Items.Where(e => e.Action == "session.state_changed")
                .Select(e => (To: e.Details.GetProperty("to").GetString(), e.Actor)).ToList();
            Assert.Contains(("stopping", ApiFactory.AdminUsername), changes);
            Assert.Contains(("stopped", $"agent:{SessionFixture.AgentId}"), changes);
        }

        var deletion = await (await admin.GetAsync($"/api/v1/audit?target_type=user&target_id={userId}&action=user.deleted")).AssertJsonAsync<AuditPage>(HttpStatusCode.OK);
        Assert.Equal(ApiFactory.AdminUsername, Assert.Single(deletion.Items).Actor);
        await (await admin.DeleteAsync($"/api/v1/users/{userId}")).AssertProblemAsync(HttpStatusCode.NotFound);
    }

    private static async Task<string[]> ProcessesAsync() =>
        (await ProcessRunner.RunCheckedAsync("ps", "-eo", "pid,args")).Split('\n');
}
