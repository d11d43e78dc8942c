using System.Net;
using System.Net.Http.Json;
using StreamSpace.Contracts;
using StreamSpace.Contracts.Api;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Api.Features.Sessions;

public sealed class SessionLifecycleTests(SessionFixture fixture) : IClassFixture<SessionFixture>
{
    [Fact]
    public async Task An_xterm_session_runs_and_its_vnc_stream_reaches_the_browser_through_the_control_plane()
    {
        using var user = await fixture.Api.NewUserClientAsync();
        var id = (await user.LaunchAsync()).Id;
        var running = await user.WaitForStateAsync(id, SessionState.Running);
        Assert.Equal(SessionFixture.AgentId, running.AgentId);
        Assert.Equal("local", running.Platform);

        using var viewer = await RfbViewer.ConnectAsync(fixture.Api.BaseAddress, await user.ConnectUrlAsync(id));
        Assert.Equal("binary", viewer.Socket.SubProtocol);
        var desktop = await viewer.HandshakeAsync();
        Assert.Equal((1280, 800), (desktop.Width, desktop.Height));
        Assert.Equal(id, desktop.Name);

        var (rectangles, width, height) = await viewer.RequestFullUpdateAsync(desktop);
        Assert.True(rectangles > 0);
        Assert.True(width > 0 && height > 0);
    }

    [Fact]
    public async Task A_ticket_works_once_and_only_for_its_session()
    {
        using var user = await fixture.Api.NewUserClientAsync();
        var first = (await user.LaunchAsync()).Id;
        var second = (await user.LaunchAsync()).Id;
        await user.WaitForStateAsync(first, SessionState.Running);
        await user.WaitForStateAsync(second, SessionState.Running);

        var url = await user.ConnectUrlAsync(first);
        using (var viewer = await RfbViewer.ConnectAsync(fixture.Api.BaseAddress, url))
        {
            await viewer.HandshakeAsync();
        }

        var reused = await Assert.ThrowsAsync<System.Net.WebSockets.WebSocketException>(() => RfbViewer.ConnectAsync(fixture.Api.BaseAddress, url));
        Assert.Contains("401", reused.Message);

        var otherSession = (await user.ConnectUrlAsync(first)).Replace(first, second, StringComparison.Ordinal);
        await Assert.ThrowsAsync<System.Net.WebSockets.WebSocketException>(() => RfbViewer.ConnectAsync(fixture.Api.BaseAddress, otherSession));
    }

    [Fact]
    public async Task Another_users_session_is_404_for_get_connect_and_stop_and_admins_reach_it()
    {
        using var owner = await fixture.Api.NewUserClientAsync();
        using var stranger = await fixture.Api.NewUserClientAsync();
        var id = (await owner.LaunchAsync()).Id;

        await (await stranger.GetAsync($"/api/v1/sessions/{id}")).AssertProblemAsync(HttpStatusCode.NotFound);
        await (await stranger.PostAsync($"/api/v1/sessions/{id}/connect", null)).AssertProblemAsync(HttpStatusCode.NotFound);
        await (await stranger.DeleteAsync($"/api/v1/sessions/{id}")).AssertProblemAsync(HttpStatusCode.NotFound);
        var strangersList = await (await stranger.GetAsync("/api/v1/sessions")).AssertJsonAsync<List<SessionResponse>>(HttpStatusCode.OK);
        Assert.DoesNotContain(strangersList, s => s.Id == id);

        using var admin = await fixture.Api.AdminClientAsync();
        Assert.Equal(HttpStatusCode.OK, (await admin.GetAsync($"/api/v1/sessions/{id}")).StatusCode);
        await owner.WaitForStateAsync(id, SessionState.Running);
        Assert.Equal(HttpStatusCode.Accepted, (await admin.DeleteAsync($"/api/v1/sessions/{id}")).StatusCode);
        await owner.WaitForStateAsync(id, SessionState.Stopped);
    }

    [Fact]
    public async Task Stopping_leaves_no_xvnc_or_child_process_and_a_second_stop_is_a_conflict()
    {
        using var user = await fixture.Api.NewUserClientAsync();
        var id = (await user.LaunchAsync()).Id;
        var running = await user.WaitForStateAsync(id, SessionState.Running);
        var port = running.PlatformMetadata.GetProperty("vnc_port").GetInt32();
        Assert.Contains(await ProcessesAsync(), line => line.Contains($"-rfbport {port}", StringComparison.Ordinal));

        Assert.Equal(HttpStatusCode.Accepted, (await user.DeleteAsync($"/api/v1/sessions/{id}")).StatusCode);
        await user.WaitForStateAsync(id, SessionState.Stopped);

        Assert.DoesNotContain(await ProcessesAsync(), line => line.Contains($"-rfbport {port}", StringComparison.Ordinal) || line.Contains(id, StringComparison.Ordinal));
        await (await user.DeleteAsync($"/api/v1/sessions/{id}")).AssertProblemAsync(HttpStatusCode.Conflict);
    }

    [Fact]
    public async Task A_file_in_home_survives_hibernate_wake_and_a_new_session_of_the_same_user()
    {
        var username = "homer-" + Guid.NewGuid().ToString("N")[..6];
        using var user = await fixture.Api.NewUserClientAsync(username);
        var id = (await user.LaunchAsync()).Id;
        await user.WaitForStateAsync(id, SessionState.Running);
        var home = fixture.Agent.HomeOf(await user.UserIdAsync());
        await File.WriteAllTextAsync(Path.Combine(home, "notes.txt"), "kept");

        Assert.Equal(HttpStatusCode.Accepted, (await user.PostAsync($"/api/v1/sessions/{id}/hibernate", null)).StatusCode);
        await user.WaitForStateAsync(id, SessionState.Hibernated);
        await (await user.PostAsync($"/api/v1/sessions/{id}/connect", null)).AssertProblemAsync(HttpStatusCode.Conflict);
        await (await user.PostAsync($"/api/v1/sessions/{id}/hibernate", null)).AssertProblemAsync(HttpStatusCode.Conflict);

        Assert.Equal(HttpStatusCode.Accepted, (await user.PostAsync($"/api/v1/sessions/{id}/wake", null)).StatusCode);
        await user.WaitForStateAsync(id, SessionState.Running);
        Assert.Equal("kept", await File.ReadAllTextAsync(Path.Combine(home, "notes.txt")));

        await user.DeleteAsync($"/api/v1/sessions/{id}");
        await user.WaitForStateAsync(id, SessionState.Stopped);
        var next = (await user.LaunchAsync()).Id;
        await user.WaitForStateAsync(next, SessionState.Running);
        Assert.Equal("kept", await File.ReadAllTextAsync(Path.Combine(home, "notes.txt")));
    }

    [Fact]
    public async Task A_session_with_no_input_for_its_idle_timeout_hibernates()
    {
        using var admin = await fixture.Api.AdminClientAsync();
        var created = await admin.PostAsJsonAsync("/api/v1/templates", new { name = "quick-idle", display_name = "Idles quickly", command = "xterm", idle_timeout = "2s" });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);

        var id = (await admin.LaunchAsync("quick-idle")).Id;
        // Running lasts only the idle timeout, which a poll on a busy machine can miss: the audit log shows it ran.
        await admin.WaitForStateAsync(id, SessionState.Hibernated);
        var changes = await admin.StateChangesAsync(id);
        // Whether the agent's heartbeat caught it hibernating on the way is a matter of timing.
        Assert.Equal([SessionState.Starting, SessionState.Running], changes[..2]);
        Assert.Equal(SessionState.Hibernated, changes[^1]);
    }

    [Fact]
    public async Task Every_state_change_is_audited()
    {
        using var admin = await fixture.Api.AdminClientAsync();
        var id = (await admin.LaunchAsync()).Id;
        await admin.WaitForStateAsync(id, SessionState.Running);

        var audit = await (await admin.GetAsync($"/api/v1/audit?target_type=session&target_id={id}")).AssertJsonAsync<AuditPage>(HttpStatusCode.OK);
        var changes = audit.Items.Reverse()
            .Select(e => e.Action == "session.created" ? "created" : e.Details.GetProperty("to").GetString())
            .ToList();
        Assert.Equal(["created", "starting", "running"], changes);
    }

    private static async Task<string[]> ProcessesAsync() =>
        (await ProcessRunner.RunCheckedAsync("ps", "-eo", "pid,args")).Split('\n');
}
