using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using StreamSpace.Contracts;
using StreamSpace.Contracts.Api;
using StreamSpace.Tests.Api.Features.Sessions;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Api.Features.Shares;

/// <summary>
/// Sharing a running session with other signed-in users, against real Xvnc sessions on a local agent: view-only is
/// enforced by Xvnc (the agent signs the viewer in with the view-only password), shares end and expire, and only the
/// users a share is for can use it.
/// </summary>
public sealed class SharingTests(SessionFixture fixture) : IClassFixture<SessionFixture>
{
    private static readonly TimeSpan Within = TimeSpan.FromSeconds(5);

    [Fact]
    public async Task A_view_only_shares_keystrokes_do_not_reach_the_session_while_an_interactive_shares_do()
    {
        var (owner, ownerName, id) = await RunningSessionAsync();
        using var recipient = await fixture.Api.NewUserClientAsync();
        var home = fixture.Agent.HomeOf(await owner.UserIdAsync());
        await FocusXtermAsync(id);

        var viewOnly = await CreateShareAsync(owner, id, new CreateShareRequest());
        Assert.Equal(ShareModes.ViewOnly, viewOnly.Mode);
        Assert.Equal($"/shares/{viewOnly.Id}", viewOnly.Url);
        Assert.True(viewOnly.Id.Length >= 40, viewOnly.Id);
        Assert.InRange(viewOnly.ExpiresAt, DateTimeOffset.UtcNow.AddMinutes(59), DateTimeOffset.UtcNow.AddMinutes(61));
        var shared = await (await recipient.GetAsync($"/api/v1/shares/{viewOnly.Id}")).AssertJsonAsync<SharedSessionResponse>(HttpStatusCode.OK);
        Assert.Equal((id, ownerName, ShareModes.ViewOnly, SessionState.Running), (shared.SessionId, shared.Owner, shared.Mode, shared.State));

        // The view-only viewer sees the desktop and types a command; Xvnc has read the keys once it answers the update
        // request sent after them on the same connection.
        using var watcher = await RfbViewer.ConnectAsync(fixture.Api.BaseAddress, await ShareConnectUrlAsync(recipient, viewOnly.Id));
        var desktop = await watcher.HandshakeAsync();
        await watcher.TypeAsync("touch ~/viewonly-proof\n");
        Assert.True((await watcher.RequestFullUpdateAsync(desktop)).Rectangles > 0);

        // The same session takes the same command from an interactive share's viewer: input works, so the view-only
        // keys (read before these) would have run first had Xvnc taken them.
        var interactive = await CreateShareAsync(owner, id, new CreateShareRequest(ShareModes.Interactive));
        using var typist = await RfbViewer.ConnectAsync(fixture.Api.BaseAddress, await ShareConnectUrlAsync(recipient, interactive.Id));
        await typist.HandshakeAsync();
        await typist.TypeAsync("touch ~/interactive-proof\n");
        await Eventually.TrueAsync(() => Task.FromResult(File.Exists(Path.Combine(home, "interactive-proof"))), TimeSpan.FromSeconds(15),
            "the interactive share's command to create ~/interactive-proof");
        await Task.Delay(TimeSpan.FromSeconds(1)); // a bounded grace for the earlier command, which must never come
        Assert.False(File.Exists(Path.Combine(home, "viewonly-proof")), "a view-only viewer's keystrokes reached the session");

        // The owner sees both shared viewers, with their share and mode; both shares are listed as active.
        var viewers = await ViewersAsync(owner, id, 2);
        Assert.Contains(viewers, v => v.ShareId == viewOnly.Id && v.ViewOnly);
        Assert.Contains(viewers, v => v.ShareId == interactive.Id && !v.ViewOnly);
        var active = await (await owner.GetAsync($"/api/v1/sessions/{id}/shares")).AssertJsonAsync<List<ShareResponse>>(HttpStatusCode.OK);
        Assert.Equal([viewOnly.Id, interactive.Id], active.Select(s => s.Id));

        using var admin = await fixture.Api.AdminClientAsync();
        var created = await AuditAsync(admin, id, "share.created");
        Assert.Equal(2, created.Count);
        Assert.All(created, e => Assert.Equal(ownerName, e.Actor));
        var joined = await Eventually.ValueAsync(async () => await AuditAsync(admin, id, "share.joined") is { Count: 2 } rows ? rows : null,
            TimeSpan.FromSeconds(10), "both shared viewers to be audited");
        Assert.Contains(joined, e => e.Details.GetProperty("mode").GetString() == ShareModes.ViewOnly && e.Details.GetProperty("share_id").GetString() == viewOnly.Id);
    }

    [Fact]
    public async Task Ending_a_share_closes_its_viewer_within_seconds_and_its_link_answers_that_it_has_ended()
    {
        var (owner, ownerName, id) = await RunningSessionAsync();
        using var recipient = await fixture.Api.NewUserClientAsync();
        var share = await CreateShareAsync(owner, id, new CreateShareRequest(ShareModes.Interactive, 30));
        using var viewer = await RfbViewer.ConnectAsync(fixture.Api.BaseAddress, await ShareConnectUrlAsync(recipient, share.Id));
        await viewer.HandshakeAsync();
        await ViewersAsync(owner, id, 1);

        Assert.Equal(HttpStatusCode.NoContent, (await owner.DeleteAsync($"/api/v1/sessions/{id}/shares/{share.Id}")).StatusCode);
        var clock = Stopwatch.StartNew();
        var (status, reason) = await viewer.WaitForCloseAsync();
        Assert.True(clock.Elapsed < Within, $"the viewer closed after {clock.Elapsed}");
        Assert.Equal((4411, $"the share was ended by {ownerName}"), (status, reason));

        await AssertGoneAsync(recipient, share.Id, "This share has ended.");
        Assert.Equal(HttpStatusCode.NotFound, (await owner.DeleteAsync($"/api/v1/sessions/{id}/shares/{share.Id}")).StatusCode);
        Assert.Empty(await (await owner.GetAsync($"/api/v1/sessions/{id}/shares")).AssertJsonAsync<List<ShareResponse>>(HttpStatusCode.OK));
        using var admin = await fixture.Api.AdminClientAsync();
        Assert.Equal(share.Id, (await AuditAsync(admin, id, "share.ended")).Single().Details.GetProperty("share_id").GetString());
    }

    [Fact]
    public async Task An_expired_share_closes_its_viewer_within_seconds_and_its_link_answers_that_it_has_expired()
    {
        var (owner, _, id) = await RunningSessionAsync();
        using var recipient = await fixture.Api.NewUserClientAsync();
        var share = await CreateShareAsync(owner, id, new CreateShareRequest(ExpiresInMinutes: 1));
        using var viewer = await RfbViewer.ConnectAsync(fixture.Api.BaseAddress, await ShareConnectUrlAsync(recipient, share.Id));
        await viewer.HandshakeAsync();

        // A minute is the shortest share: its end is brought forward rather than waited for.
        await using (var connection = new Npgsql.NpgsqlConnection(fixture.Api.ConnectionString))
        {
            await Dapper.SqlMapper.ExecuteAsync(connection, "UPDATE session_shares SET expires_at = now() WHERE id = @id", new { id = share.Id });
        }

        var clock = Stopwatch.StartNew();
        var (status, reason) = await viewer.WaitForCloseAsync();
        Assert.True(clock.Elapsed < Within, $"the viewer closed after {clock.Elapsed}");
        Assert.Equal((4411, "This share has expired."), (status, reason));
        await AssertGoneAsync(recipient, share.Id, "This share has expired.");
    }

    [Fact]
    public async Task A_share_ends_when_whoever_created_it_may_no_longer_share_and_when_its_session_stops()
    {
        var (owner, _, id) = await RunningSessionAsync();
        using var recipient = await fixture.Api.NewUserClientAsync();
        var share = await CreateShareAsync(owner, id, new CreateShareRequest(ShareModes.Interactive));
        using var viewer = await RfbViewer.ConnectAsync(fixture.Api.BaseAddress, await ShareConnectUrlAsync(recipient, share.Id));
        await viewer.HandshakeAsync();

        // The owner is disabled: their sessions run on, but their share lets no one watch or type in them any more.
        using var admin = await fixture.Api.AdminClientAsync();
        var ownerId = await owner.UserIdAsync();
        await (await admin.PatchAsJsonAsync($"/api/v1/users/{ownerId}", new UpdateUserRequest(Disabled: true), ApiJson.OmitNulls)).AssertJsonAsync(HttpStatusCode.OK);
        var clock = Stopwatch.StartNew();
        var (status, reason) = await viewer.WaitForCloseAsync();
        Assert.True(clock.Elapsed < Within, $"the viewer closed after {clock.Elapsed}");
        Assert.Equal((4411, "This share has ended. Whoever shared the session can no longer share it."), (status, reason));
        await AssertGoneAsync(recipient, share.Id, "This share has ended.");

        // Enabled again, the share stands again until the session stops.
        await (await admin.PatchAsJsonAsync($"/api/v1/users/{ownerId}", new UpdateUserRequest(Disabled: false), ApiJson.OmitNulls)).AssertJsonAsync(HttpStatusCode.OK);
        Assert.Equal(HttpStatusCode.OK, (await recipient.GetAsync($"/api/v1/shares/{share.Id}")).StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, (await admin.DeleteAsync($"/api/v1/sessions/{id}")).StatusCode);
        await admin.WaitForStateAsync(id, SessionState.Stopped);
        await AssertGoneAsync(recipient, share.Id, "This share has ended.");
    }

    [Fact]
    public async Task A_share_is_nothing_to_users_it_is_not_for_and_names_an_unknown_user_in_its_refusal()
    {
        var (owner, _, id) = await RunningSessionAsync();
        var invitedName = "invited-" + Guid.NewGuid().ToString("N")[..8];
        using var invited = await fixture.Api.NewUserClientAsync(invitedName);
        using var stranger = await fixture.Api.NewUserClientAsync();

        var unknown = await owner.PostAsJsonAsync($"/api/v1/sessions/{id}/shares", new CreateShareRequest(Users: [invitedName, "nobody-by-that-name"]), ApiJson.Options);
        var problem = await unknown.AssertJsonAsync(HttpStatusCode.BadRequest);
        Assert.Contains("'nobody-by-that-name'", problem.GetProperty("detail").GetString());
        // An empty list of users would not be "anyone": it is refused, as blank and null names are (not a 500).
        foreach (var bad in new object[] { new { mode = "watch" }, new { expires_in_minutes = 0 }, new { expires_in_minutes = 7 * 24 * 60 + 1 },
            new { users = Array.Empty<string>() }, new { users = new[] { " " } }, new { users = new string?[] { null } } })
        {
            Assert.Equal(HttpStatusCode.BadRequest, (await owner.PostAsJsonAsync($"/api/v1/sessions/{id}/shares", bad)).StatusCode);
        }

        var share = await CreateShareAsync(owner, id, new CreateShareRequest(Users: [invitedName]));
        Assert.Equal([invitedName], share.Users);
        Assert.Equal(HttpStatusCode.OK, (await invited.GetAsync($"/api/v1/shares/{share.Id}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await stranger.GetAsync($"/api/v1/shares/{share.Id}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await stranger.PostAsync($"/api/v1/shares/{share.Id}/connect", null)).StatusCode);

        // Without the link, a user gets nothing: no share of another's session to guess, list, make or end.
        var open = await CreateShareAsync(owner, id, new CreateShareRequest());
        Assert.Equal(HttpStatusCode.NotFound, (await stranger.GetAsync($"/api/v1/shares/{open.Id[..^2]}xx")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await stranger.GetAsync($"/api/v1/sessions/{id}/shares")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await stranger.PostAsJsonAsync($"/api/v1/sessions/{id}/shares", new CreateShareRequest(), ApiJson.Options)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await stranger.DeleteAsync($"/api/v1/sessions/{id}/shares/{open.Id}")).StatusCode);
        // And the link is for signed-in users only.
        using var anonymous = fixture.Api.CreateClient();
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync($"/api/v1/shares/{open.Id}")).StatusCode);
    }

    [Fact]
    public async Task Sharing_turned_off_for_a_template_or_globally_is_refused_with_403_naming_the_switch()
    {
        using var admin = await fixture.Api.AdminClientAsync();
        var template = "noshare-" + Guid.NewGuid().ToString("N")[..6];
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync("/api/v1/templates",
            new TemplateBody(template, "No sharing", null, null, null, null, "xterm", null, null, null, null, null, null, Sharing: false), ApiJson.Options)).StatusCode);
        var body = await (await admin.GetAsync($"/api/v1/templates/{template}")).AssertJsonAsync<TemplateBody>(HttpStatusCode.OK);
        Assert.False(body.Sharing);
        using var owner = await fixture.Api.NewUserClientAsync();
        var closed = (await owner.LaunchAsync(template)).Id;
        await owner.WaitForStateAsync(closed, SessionState.Running);
        var refused = await (await owner.PostAsJsonAsync($"/api/v1/sessions/{closed}/shares", new CreateShareRequest(), ApiJson.Options)).AssertJsonAsync(HttpStatusCode.Forbidden);
        Assert.Contains($"template '{template}'", refused.GetProperty("detail").GetString());

        // With SHARING=disabled (a second replica on the same database), no share is made and no viewer joins an existing one.
        var (sharer, _, id) = await RunningSessionAsync();
        using var recipient = await fixture.Api.NewUserClientAsync();
        var share = await CreateShareAsync(sharer, id, new CreateShareRequest());
        await using var disabled = new ApiFactory(fixture.Api.ConnectionString, new Dictionary<string, string?> { ["SHARING"] = "disabled" }).Start();
        using var sharerThere = await disabled.ClientForAsync((await (await sharer.GetAsync("/api/v1/auth/me")).AssertJsonAsync<UserResponse>(HttpStatusCode.OK)).Username, "user-password-123");
        using var recipientThere = await disabled.ClientForAsync((await (await recipient.GetAsync("/api/v1/auth/me")).AssertJsonAsync<UserResponse>(HttpStatusCode.OK)).Username, "user-password-123");
        refused = await (await sharerThere.PostAsJsonAsync($"/api/v1/sessions/{id}/shares", new CreateShareRequest(), ApiJson.Options)).AssertJsonAsync(HttpStatusCode.Forbidden);
        Assert.Contains("SHARING=disabled", refused.GetProperty("detail").GetString());
        refused = await (await recipientThere.PostAsync($"/api/v1/shares/{share.Id}/connect", null)).AssertJsonAsync(HttpStatusCode.Forbidden);
        Assert.Contains("SHARING=disabled", refused.GetProperty("detail").GetString());

        using var adminThere = await disabled.AdminClientAsync();
        var report = await (await adminThere.GetAsync("/api/v1/admin/diagnostics")).AssertJsonAsync(HttpStatusCode.OK);
        var sharing = report.GetProperty("checks").EnumerateArray().Single(c => c.GetProperty("id").GetString() == "sharing.enabled");
        Assert.StartsWith("SHARING is disabled", sharing.GetProperty("evidence").GetString());
    }

    [Fact]
    public async Task A_session_started_before_view_only_sharing_refuses_a_view_only_viewer_and_never_signs_it_in_with_the_full_password()
    {
        var (owner, _, id) = await RunningSessionAsync();
        using var recipient = await fixture.Api.NewUserClientAsync();
        // As an agent before sharing wrote it: the agent's copy holds the full password's 8 bytes only.
        var passwords = Path.Combine(fixture.Agent.DataDirectory, "sessions", id, "password");
        await File.WriteAllBytesAsync(passwords, (await File.ReadAllBytesAsync(passwords))[..8]);

        var share = await CreateShareAsync(owner, id, new CreateShareRequest());
        using var viewer = await RfbViewer.ConnectAsync(fixture.Api.BaseAddress, await ShareConnectUrlAsync(recipient, share.Id));
        var (status, reason) = await viewer.WaitForCloseAsync();
        Assert.Equal(4502, status);
        Assert.Contains("restart the session to share it view-only", reason, StringComparison.Ordinal);

        // An interactive share of the same session still works: it uses the full password, as the owner's viewer does.
        var interactive = await CreateShareAsync(owner, id, new CreateShareRequest(ShareModes.Interactive));
        using var typist = await RfbViewer.ConnectAsync(fixture.Api.BaseAddress, await ShareConnectUrlAsync(recipient, interactive.Id));
        await typist.HandshakeAsync();
    }

    [Fact]
    public async Task A_view_only_share_is_refused_with_409_while_the_sessions_agent_speaks_a_protocol_older_than_view_only()
    {
        var (owner, _, id) = await RunningSessionAsync();
        using var recipient = await fixture.Api.NewUserClientAsync();
        var share = await CreateShareAsync(owner, id, new CreateShareRequest());
        await SetAgentProtocolAsync(AgentProtocol.DataVersion);
        try
        {
            var refused = await (await owner.PostAsJsonAsync($"/api/v1/sessions/{id}/shares", new CreateShareRequest(), ApiJson.Options)).AssertJsonAsync(HttpStatusCode.Conflict);
            Assert.Contains("too old to share view-only", refused.GetProperty("detail").GetString());
            refused = await (await recipient.PostAsync($"/api/v1/shares/{share.Id}/connect", null)).AssertJsonAsync(HttpStatusCode.Conflict);
            Assert.Contains("too old to share view-only", refused.GetProperty("detail").GetString());
            // Interactive needs nothing new of the agent.
            await CreateShareAsync(owner, id, new CreateShareRequest(ShareModes.Interactive));
        }
        finally
        {
            await SetAgentProtocolAsync(AgentProtocol.Version);
        }
    }

    /// <summary>What the agent said hello with, as every replica reads it; the agent itself is unchanged.</summary>
    private async Task SetAgentProtocolAsync(int version)
    {
        await using var connection = new Npgsql.NpgsqlConnection(fixture.Api.ConnectionString);
        await Dapper.SqlMapper.ExecuteAsync(connection, "UPDATE agents SET protocol_version = @version WHERE id = @id", new { version, id = SessionFixture.AgentId });
    }

    private async Task<(HttpClient Owner, string OwnerName, string SessionId)> RunningSessionAsync()
    {
        var name = "sharer-" + Guid.NewGuid().ToString("N")[..8];
        var owner = await fixture.Api.NewUserClientAsync(name);
        var id = (await owner.LaunchAsync()).Id;
        await owner.WaitForStateAsync(id, SessionState.Running);
        return (owner, name, id);
    }

    private static async Task<ShareResponse> CreateShareAsync(HttpClient owner, string sessionId, CreateShareRequest request) =>
        await (await owner.PostAsJsonAsync($"/api/v1/sessions/{sessionId}/shares", request, ApiJson.Options)).AssertJsonAsync<ShareResponse>(HttpStatusCode.Created);

    private static async Task<string> ShareConnectUrlAsync(HttpClient recipient, string shareId) =>
        (await (await recipient.PostAsync($"/api/v1/shares/{shareId}/connect", null)).AssertJsonAsync<ConnectResponse>(HttpStatusCode.OK)).Url;

    private static async Task AssertGoneAsync(HttpClient recipient, string shareId, string title)
    {
        foreach (var response in new[] { await recipient.GetAsync($"/api/v1/shares/{shareId}"), await recipient.PostAsync($"/api/v1/shares/{shareId}/connect", null) })
        {
            var problem = await response.AssertJsonAsync(HttpStatusCode.Gone);
            Assert.Equal(title, problem.GetProperty("title").GetString());
        }
    }

    /// <summary>Gives the session's xterm the keyboard focus, as a click in it would, so typed keys reach it.</summary>
    private async Task FocusXtermAsync(string sessionId)
    {
        var records = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(fixture.Agent.DataDirectory, "sessions.json"))).RootElement;
        var display = ":" + records.EnumerateArray().Single(r => r.GetProperty("SessionId").GetString() == sessionId).GetProperty("Display").GetInt32();
        var environment = new Dictionary<string, string>
        {
            ["DISPLAY"] = display,
            ["XAUTHORITY"] = Path.Combine(fixture.Agent.DataDirectory, "sessions", sessionId, "run", "Xauthority"),
        };
        var focused = await ProcessRunner.RunAsync("xdotool", ["search", "--sync", "--class", "XTerm", "windowactivate", "--sync"], environment, TimeSpan.FromSeconds(20));
        Assert.True(focused.ExitCode == 0, $"xdotool could not focus the xterm: {focused.StandardError}");
    }

    private static async Task<IReadOnlyList<AuditEntryResponse>> AuditAsync(HttpClient admin, string sessionId, string action) =>
        (await (await admin.GetAsync($"/api/v1/audit?target_type=session&target_id={sessionId}&action={action}")).AssertJsonAsync<AuditPage>(HttpStatusCode.OK)).Items;

    private static async Task<List<ViewerResponse>> ViewersAsync(HttpClient client, string sessionId, int count)
    {
        List<ViewerResponse> viewers = [];
        await Eventually.TrueAsync(async () =>
        {
            viewers = await (await client.GetAsync($"/api/v1/sessions/{sessionId}/viewers")).AssertJsonAsync<List<ViewerResponse>>(HttpStatusCode.OK);
            return viewers.Count == count;
        }, TimeSpan.FromSeconds(10), $"{count} viewers of {sessionId}");
        return viewers;
    }
}
