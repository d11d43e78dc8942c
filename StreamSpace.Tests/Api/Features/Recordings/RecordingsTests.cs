using System.Text.Json;
using System.Net;
using System.Net.Http.Json;
using Microsoft.Extensions.Logging.Abstractions;
using StreamSpace.Agent;
using StreamSpace.Agent.Tunnel;
using StreamSpace.Contracts;
using StreamSpace.Contracts.Api;
using StreamSpace.Contracts.Tunnel;
using StreamSpace.Tests.Api.Features.Agents;
using StreamSpace.Tests.Api.Features.Sessions;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Api.Features.Recordings;

/// <summary>The recordings catalog against real PostgreSQL, with hand-driven agents reporting recordings as the recorder does.</summary>
public sealed class RecordingsTests(ApiFixture fixture) : IClassFixture<ApiFixture>
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);

    private ApiFactory Api => fixture.Api;

    [Fact]
    public async Task A_report_creates_the_recording_with_its_sessions_owner_and_later_reports_update_it_for_admins_only()
    {
        using var owner = await Api.NewUserClientAsync("rec-owner");
        var (key, sessionId) = await RecordingAgent.RegisterWithSessionAsync(Api, "rec-report", "rec-owner");
        using var agent = await RecordingAgent.ConnectAsync(Api, "rec-report", key, [sessionId]);
        using var admin = await Api.AdminClientAsync();

        var id = Guid.NewGuid();
        var started = DateTimeOffset.UtcNow.AddSeconds(-5);
        await agent.ReportAsync(new RecordingMessage(id, sessionId, started, 5_000, 1_000));
        var listed = await Eventually.ValueAsync(async () =>
            (await (await admin.GetAsync($"{RecordingRoutes.List}?session={sessionId}")).AssertJsonAsync<List<RecordingResponse>>(HttpStatusCode.OK)).SingleOrDefault(),
            Wait, "the recording to be listed");
        Assert.Equal((id, "rec-owner", "xterm", "rec-report", true, 1_000L), (listed.Id, listed.Username, listed.Template, listed.AgentId, listed.Recording, listed.Bytes));
        Assert.Equal(await owner.UserIdAsync(), listed.UserId);

        await agent.ReportAsync(new RecordingMessage(id, sessionId, started, 9_000, 4_000, started.AddSeconds(9)));
        var ended = await Eventually.ValueAsync(async () =>
        {
            var recording = await (await admin.GetAsync(RecordingRoutes.One(id))).AssertJsonAsync<RecordingResponse>(HttpStatusCode.OK);
            return recording.Recording ? null : recording;
        }, Wait, "the recording to end");
        Assert.Equal((9_000L, 4_000L), (ended.DurationMs, ended.Bytes));
        Assert.Equal(started.AddSeconds(9).ToUnixTimeMilliseconds(), ended.EndedAt!.Value.ToUnixTimeMilliseconds());
        Assert.Contains((await (await admin.GetAsync($"{RecordingRoutes.List}?user=REC-OWNER")).AssertJsonAsync<List<RecordingResponse>>(HttpStatusCode.OK)), r => r.Id == id);

        // Recordings are for admins: the owner of the session recorded gets 403, not the list.
        await (await owner.GetAsync(RecordingRoutes.List)).AssertProblemAsync(HttpStatusCode.Forbidden);
        await (await owner.GetAsync(RecordingRoutes.One(id))).AssertProblemAsync(HttpStatusCode.Forbidden);
        await (await admin.GetAsync(RecordingRoutes.One(Guid.NewGuid()))).AssertProblemAsync(HttpStatusCode.NotFound);
        await (await admin.GetAsync($"{RecordingRoutes.List}/not-an-id")).AssertProblemAsync(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task A_progress_report_arriving_after_the_final_one_does_not_reopen_or_shrink_the_recording()
    {
        var (key, sessionId) = await RecordingAgent.RegisterWithSessionAsync(Api, "rec-late", "admin");
        using var agent = await RecordingAgent.ConnectAsync(Api, "rec-late", key, [sessionId]);
        using var admin = await Api.AdminClientAsync();
        var id = await ReportedAsync(admin, agent, sessionId);

        await agent.ReportAsync(new RecordingMessage(id, sessionId, DateTimeOffset.UtcNow.AddSeconds(-10), 4_000, 500));
        var marker = Guid.NewGuid();
        await agent.ReportAsync(new RecordingMessage(marker, sessionId, DateTimeOffset.UtcNow, 1_000, 10));
        await Eventually.TrueAsync(async () => (await admin.GetAsync(RecordingRoutes.One(marker))).StatusCode == HttpStatusCode.OK, Wait,
            "the report after the late one to be recorded (same session, so handled in order)");

        var recording = await (await admin.GetAsync(RecordingRoutes.One(id))).AssertJsonAsync<RecordingResponse>(HttpStatusCode.OK);
        Assert.False(recording.Recording);
        Assert.NotNull(recording.EndedAt);
        Assert.Equal((10_000L, 2_000L), (recording.DurationMs, recording.Bytes));
    }

    [Fact]
    public async Task A_report_of_a_deleted_users_session_is_recorded_without_the_user_and_the_agent_stays_connected()
    {
        using var owner = await Api.NewUserClientAsync("rec-leaver");
        var ownerId = await owner.UserIdAsync();
        var (key, sessionId) = await RecordingAgent.RegisterWithSessionAsync(Api, "rec-leaver", "rec-leaver");
        using var agent = await RecordingAgent.ConnectAsync(Api, "rec-leaver", key, [sessionId]);
        using var admin = await Api.AdminClientAsync();
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"/api/v1/users/{ownerId}")).StatusCode);

        var id = Guid.NewGuid();
        await agent.ReportAsync(new RecordingMessage(id, sessionId, DateTimeOffset.UtcNow.AddSeconds(-5), 5_000, 700, DateTimeOffset.UtcNow));
        var recording = await Eventually.ValueAsync(async () =>
        {
            var response = await admin.GetAsync(RecordingRoutes.One(id));
            return response.StatusCode == HttpStatusCode.OK ? await response.AssertJsonAsync<RecordingResponse>(HttpStatusCode.OK) : null;
        }, Wait, "the deleted user's recording to be listed");
        Assert.Null(recording.UserId);
        Assert.Equal(700L, recording.Bytes);

        // The same connection still carries reports: it was not closed over the report.
        Assert.Equal("online", (await Api.GetAgentAsync("rec-leaver")).GetProperty("status").GetString());
        await ReportedAsync(admin, agent, sessionId);
    }

    [Fact]
    public async Task A_recording_whose_end_report_was_lost_is_ended_at_its_last_report_while_its_agent_stays_connected()
    {
        var (key, sessionId) = await RecordingAgent.RegisterWithSessionAsync(Api, "rec-silent", "admin");
        using var agent = await RecordingAgent.ConnectAsync(Api, "rec-silent", key, [sessionId]);
        using var admin = await Api.AdminClientAsync();
        var id = Guid.NewGuid();
        var started = DateTimeOffset.UtcNow.AddSeconds(-8);
        // A progress report, then nothing: the agent restarted its recorder, or the end report went with a connection.
        await agent.ReportAsync(new RecordingMessage(id, sessionId, started, 8_000, 900));
        var open = await Eventually.ValueAsync(async () =>
        {
            var response = await admin.GetAsync(RecordingRoutes.One(id));
            return response.StatusCode == HttpStatusCode.OK ? await response.AssertJsonAsync<RecordingResponse>(HttpStatusCode.OK) : null;
        }, Wait, "the recording to be listed");
        Assert.True(open.Recording);

        var ended = await Eventually.ValueAsync(async () =>
        {
            var recording = await (await admin.GetAsync(RecordingRoutes.One(id))).AssertJsonAsync<RecordingResponse>(HttpStatusCode.OK);
            return recording.Recording ? null : recording;
        }, TimeSpan.FromSeconds(60), "the silent recording to be ended");
        Assert.Equal(started.AddSeconds(8).ToUnixTimeMilliseconds(), ended.EndedAt!.Value.ToUnixTimeMilliseconds());
        Assert.Equal((8_000L, 900L), (ended.DurationMs, ended.Bytes));
    }

    [Fact]
    public async Task A_report_about_a_session_placed_on_another_agent_is_dropped()
    {
        var (homeKey, homeSession) = await RecordingAgent.RegisterWithSessionAsync(Api, "rec-home", "admin");
        var (otherKey, otherSession) = await RecordingAgent.RegisterWithSessionAsync(Api, "rec-other", "admin");
        using var home = await RecordingAgent.ConnectAsync(Api, "rec-home", homeKey, [homeSession]);
        using var other = await RecordingAgent.ConnectAsync(Api, "rec-other", otherKey, [otherSession]);
        var before = (await Api.GetAgentAsync("rec-other")).GetProperty("last_heartbeat").GetDateTimeOffset();

        var forged = Guid.NewGuid();
        await other.ReportAsync(new RecordingMessage(forged, homeSession, DateTimeOffset.UtcNow, 1_000, 100));
        // A heartbeat that reports sessions is handled only after every message before it: once it is recorded, so is the forged report's fate.
        await other.SendHeartbeatAsync([otherSession]);
        await Eventually.TrueAsync(async () => (await Api.GetAgentAsync("rec-other")).GetProperty("last_heartbeat").GetDateTimeOffset() > before,
            Wait, "the heartbeat after the forged report to be handled");

        using var admin = await Api.AdminClientAsync();
        await (await admin.GetAsync(RecordingRoutes.One(forged))).AssertProblemAsync(HttpStatusCode.NotFound);
        Assert.Empty(await (await admin.GetAsync($"{RecordingRoutes.List}?session={homeSession}")).AssertJsonAsync<List<RecordingResponse>>(HttpStatusCode.OK));
    }

    [Fact]
    public async Task Deleting_a_recording_audits_who_and_tells_its_agent_and_a_late_report_does_not_bring_it_back()
    {
        var (key, sessionId) = await RecordingAgent.RegisterWithSessionAsync(Api, "rec-delete", "admin");
        using var agent = await RecordingAgent.ConnectAsync(Api, "rec-delete", key, [sessionId]);
        using var admin = await Api.AdminClientAsync();
        var id = await ReportedAsync(admin, agent, sessionId);

        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync(RecordingRoutes.One(id))).StatusCode);
        await agent.ReceiveAsync<DeleteRecordingMessage>(m => m.RecordingId == id);
        await (await admin.GetAsync(RecordingRoutes.One(id))).AssertProblemAsync(HttpStatusCode.NotFound);
        Assert.DoesNotContain(await (await admin.GetAsync(RecordingRoutes.List)).AssertJsonAsync<List<RecordingResponse>>(HttpStatusCode.OK), r => r.Id == id);

        var audit = await (await admin.GetAsync($"/api/v1/audit?action=recording.deleted&target_id={id}")).AssertJsonAsync<AuditPage>(HttpStatusCode.OK);
        var entry = Assert.Single(audit.Items);
        Assert.Equal(("admin", "recording"), (entry.Actor, entry.TargetType));
        Assert.Equal("admin", entry.Details.GetProperty("by").GetString());
        Assert.Equal(sessionId, entry.Details.GetProperty("session").GetString());
        await (await admin.DeleteAsync(RecordingRoutes.One(id))).AssertProblemAsync(HttpStatusCode.NotFound);

        // The recorder's progress report written before it read the delete: the recording stays deleted.
        await agent.ReportAsync(new RecordingMessage(id, sessionId, DateTimeOffset.UtcNow.AddSeconds(-5), 6_000, 600));
        var marker = Guid.NewGuid();
        await agent.ReportAsync(new RecordingMessage(marker, sessionId, DateTimeOffset.UtcNow, 1_000, 10));
        await Eventually.TrueAsync(async () => (await admin.GetAsync(RecordingRoutes.One(marker))).StatusCode == HttpStatusCode.OK, Wait,
            "the report after the late one to be recorded (same session, so handled in order)");
        await (await admin.GetAsync(RecordingRoutes.One(id))).AssertProblemAsync(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task A_recording_deleted_while_its_agent_is_offline_is_deleted_on_the_agent_when_it_reconnects()
    {
        var (key, sessionId) = await RecordingAgent.RegisterWithSessionAsync(Api, "rec-offline", "admin");
        using var admin = await Api.AdminClientAsync();
        Guid id;
        using (var agent = await RecordingAgent.ConnectAsync(Api, "rec-offline", key, [sessionId]))
        {
            id = await ReportedAsync(admin, agent, sessionId);
        }

        await WaitOfflineAsync("rec-offline");
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync(RecordingRoutes.One(id))).StatusCode);
        await (await admin.GetAsync(RecordingRoutes.One(id))).AssertProblemAsync(HttpStatusCode.NotFound);

        using var back = await RecordingAgent.ConnectAsync(Api, "rec-offline", key, [sessionId]);
        await back.ReceiveAsync<DeleteRecordingMessage>(m => m.RecordingId == id);
    }

    [Fact]
    public async Task A_delete_handed_to_a_connection_that_then_dropped_is_sent_again_at_the_reconnect()
    {
        var (key, sessionId) = await RecordingAgent.RegisterWithSessionAsync(Api, "rec-lost", "admin");
        using var admin = await Api.AdminClientAsync();
        Guid id;
        using (var agent = await RecordingAgent.ConnectAsync(Api, "rec-lost", key, [sessionId]))
        {
            id = await ReportedAsync(admin, agent, sessionId);
            Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync(RecordingRoutes.One(id))).StatusCode);
            // The delete was queued on this connection; the agent drops it unread, as a connection lost just then would.
        }

        await WaitOfflineAsync("rec-lost");
        using var back = await RecordingAgent.ConnectAsync(Api, "rec-lost", key, [sessionId]);
        await back.ReceiveAsync<DeleteRecordingMessage>(m => m.RecordingId == id);
    }

    [Fact]
    public async Task Recording_a_session_tells_its_owner_and_asks_its_agent_now_and_at_each_reconnect()
    {
        using var owner = await Api.NewUserClientAsync("rec-watched");
        var (key, sessionId) = await RecordingAgent.RegisterWithSessionAsync(Api, "rec-ask", "rec-watched");
        using var admin = await Api.AdminClientAsync();
        Assert.False((await owner.WaitForStateAsync(sessionId, SessionState.Running)).Recording);

        using (var agent = await RecordingAgent.ConnectAsync(Api, "rec-ask", key, [sessionId]))
        {
            var marked = await (await admin.PostAsync(RecordingRoutes.RecordSession(sessionId), null)).AssertJsonAsync<SessionResponse>(HttpStatusCode.OK);
            Assert.True(marked.Recording);
            await agent.ReceiveAsync<RecordSessionMessage>(m => m.SessionId == sessionId);
        }

        Assert.True((await owner.WaitForStateAsync(sessionId, SessionState.Running)).Recording);
        var audit = await (await admin.GetAsync($"/api/v1/audit?action=session.recorded&target_id={sessionId}")).AssertJsonAsync<AuditPage>(HttpStatusCode.OK);
        Assert.Equal("admin", Assert.Single(audit.Items).Actor);

        // A restarted agent has forgotten: it is asked again after its welcome.
        await WaitOfflineAsync("rec-ask");
        using var back = await RecordingAgent.ConnectAsync(Api, "rec-ask", key, [sessionId]);
        await back.ReceiveAsync<RecordSessionMessage>(m => m.SessionId == sessionId);
    }

    [Fact]
    public async Task A_session_recorded_before_it_hibernated_is_recorded_again_when_it_wakes()
    {
        using var owner = await Api.NewUserClientAsync("rec-sleeper");
        var key = await Api.RegisterAgentAsync("rec-wake");
        var sessionId = await RecordingAgent.RunningSessionAsync(Api.ConnectionString, "rec-wake", "rec-sleeper", record: true, state: "hibernated");
        using var agent = await RecordingAgent.ConnectAsync(Api, "rec-wake", key, [sessionId], reported: SessionState.Hibernated);

        Assert.Equal(HttpStatusCode.Accepted, (await owner.PostAsync($"/api/v1/sessions/{sessionId}/wake", null)).StatusCode);
        // The plain xterm template does not record: the wake asks for it because the session is recorded.
        var wake = await agent.ReceiveAsync<CommandMessage>(m => m.SessionId == sessionId && m.CommandType == CommandTypes.WakeSession);
        Assert.True(wake.Payload.Deserialize<SessionCommandPayload>(AgentProtocol.Json)!.Template.Record);
    }

    [Fact]
    public async Task Recording_a_session_needs_an_admin_a_running_session_and_its_agent_online_at_protocol_4()
    {
        using var user = await Api.NewUserClientAsync("rec-nosy");
        using var admin = await Api.AdminClientAsync();
        var (key, sessionId) = await RecordingAgent.RegisterWithSessionAsync(Api, "rec-old", "rec-nosy");

        await (await user.PostAsync(RecordingRoutes.RecordSession(sessionId), null)).AssertProblemAsync(HttpStatusCode.Forbidden);
        await (await admin.PostAsync(RecordingRoutes.RecordSession("sess-nonexistent"), null)).AssertProblemAsync(HttpStatusCode.NotFound);
        var offline = await (await admin.PostAsync(RecordingRoutes.RecordSession(sessionId), null)).AssertProblemAsync(HttpStatusCode.ServiceUnavailable);
        Assert.Contains("not online", offline.GetProperty("title").GetString());

        using (await RecordingAgent.ConnectAsync(Api, "rec-old", key, [sessionId], protocolVersion: AgentProtocol.ViewOnlyVersion))
        {
            var old = await (await admin.PostAsync(RecordingRoutes.RecordSession(sessionId), null)).AssertProblemAsync(HttpStatusCode.Conflict);
            Assert.Contains("protocol 3", old.GetProperty("detail").GetString());
        }

        Assert.False((await user.WaitForStateAsync(sessionId, SessionState.Running)).Recording);
    }

    [Fact]
    public async Task A_session_of_a_recorded_template_says_so_from_its_launch()
    {
        using var admin = await Api.AdminClientAsync();
        var created = await admin.PostAsJsonAsync("/api/v1/templates", new { name = "rec-xterm", display_name = "Recorded terminal", command = "xterm", record = true });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        using var agent = await RecordingAgent.ConnectAsync(Api, "rec-launch", await Api.RegisterAgentAsync("rec-launch"), []);
        using var owner = await Api.NewUserClientAsync("rec-launcher");

        var session = await owner.LaunchAsync("rec-xterm");
        Assert.True(session.Recording);
        Assert.True((await (await owner.GetAsync($"/api/v1/sessions/{session.Id}")).AssertJsonAsync<SessionResponse>(HttpStatusCode.OK)).Recording);
        Assert.True((await (await owner.GetAsync("/api/v1/templates/rec-xterm")).AssertJsonAsync<TemplateBody>(HttpStatusCode.OK)).Record);
    }

    [Theory]
    [InlineData("file", RecordingStreams.Download, "application/octet-stream", ".ssrfb")]
    [InlineData("export", RecordingStreams.Export, "video/mp4", ".mp4")]
    public async Task A_recording_streams_from_its_agent_over_a_data_connection(string route, string purpose, string contentType, string extension)
    {
        var agentId = $"rec-stream-{route}";
        var (key, sessionId) = await RecordingAgent.RegisterWithSessionAsync(Api, agentId, "admin");
        using var agent = await RecordingAgent.ConnectAsync(Api, agentId, key, [sessionId]);
        using var admin = await Api.AdminClientAsync();
        var id = await ReportedAsync(admin, agent, sessionId);
        var content = new byte[300_000];
        Random.Shared.NextBytes(content);

        var download = admin.GetAsync(route == "file" ? RecordingRoutes.File(id) : RecordingRoutes.Export(id));
        var open = await agent.ReceiveAsync<StreamOpenMessage>(m => m.Purpose == purpose);
        Assert.Equal((id.ToString("D"), sessionId), (open.FileName, open.SessionId));
        var dialer = new DataDialer(new AgentSettings { ControlPlaneUrl = Api.AgentHubUrl, AgentId = agentId }, TimeProvider.System, NullLogger<DataDialer>.Instance);
        await using (var data = await dialer.ConnectAsync(open, CancellationToken.None))
        {
            await FileStreams.WriteReplyAsync(data, new FileStreamReply(200, Size: content.Length), CancellationToken.None);
            await data.WriteAsync(content);
        }

        var response = await download;
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(contentType, response.Content.Headers.ContentType!.MediaType);
        Assert.EndsWith(extension, response.Content.Headers.ContentDisposition!.FileNameStar);
        Assert.Equal(content, await response.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public async Task A_recording_whose_agent_is_offline_answers_503()
    {
        var (key, sessionId) = await RecordingAgent.RegisterWithSessionAsync(Api, "rec-gone", "admin");
        using var admin = await Api.AdminClientAsync();
        Guid id;
        using (var agent = await RecordingAgent.ConnectAsync(Api, "rec-gone", key, [sessionId]))
        {
            id = await ReportedAsync(admin, agent, sessionId);
        }

        await WaitOfflineAsync("rec-gone");
        var problem = await (await admin.GetAsync(RecordingRoutes.File(id))).AssertProblemAsync(HttpStatusCode.ServiceUnavailable);
        Assert.Contains("not online", problem.GetProperty("title").GetString());
    }

    /// <summary>Reports a finished recording of the session and waits until admins see it.</summary>
    private static async Task<Guid> ReportedAsync(HttpClient admin, RecordingAgent agent, string sessionId)
    {
        var id = Guid.NewGuid();
        var started = DateTimeOffset.UtcNow.AddSeconds(-10);
        await agent.ReportAsync(new RecordingMessage(id, sessionId, started, 10_000, 2_000, started.AddSeconds(10)));
        await Eventually.TrueAsync(async () => (await admin.GetAsync(RecordingRoutes.One(id))).StatusCode == HttpStatusCode.OK, Wait, "the recording to be listed");
        return id;
    }

    private async Task WaitOfflineAsync(string agentId) =>
        await Eventually.TrueAsync(async () => (await Api.GetAgentAsync(agentId)).GetProperty("status").GetString() == "offline", Wait, $"{agentId} to be offline");
}
