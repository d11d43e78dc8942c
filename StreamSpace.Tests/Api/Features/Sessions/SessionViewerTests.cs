using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using StreamSpace.Contracts;
using StreamSpace.Contracts.Api;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Api.Features.Sessions;

/// <summary>Long-lived streams end once what allowed them no longer stands; viewers are listed, revocable and audited.</summary>
public sealed class SessionViewerTests(SessionFixture fixture) : IClassFixture<SessionFixture>
{
    private const string Password = "user-password-123";
    private static readonly TimeSpan Within = TimeSpan.FromSeconds(5);

    [Fact]
    public async Task A_demoted_admins_events_stream_closes_and_a_new_one_shows_only_their_own_sessions()
    {
        var name = "admin-" + Guid.NewGuid().ToString("N")[..8];
        using var formerAdmin = await fixture.Api.NewUserClientAsync(name, role: "admin");
        using var admin = await fixture.Api.AdminClientAsync();
        using var other = await fixture.Api.NewUserClientAsync();
        await using var adminStream = await EventStream.OpenAsync(fixture.Api, formerAdmin);

        (await admin.PatchAsJsonAsync($"/api/v1/users/{await formerAdmin.UserIdAsync()}", new { role = "user" })).EnsureSuccessStatusCode();
        var clock = Stopwatch.StartNew();
        var last = await adminStream.ReadToEndAsync(TimeSpan.FromSeconds(15));
        Assert.True(clock.Elapsed < Within, $"the stream closed after {clock.Elapsed}");
        Assert.Contains(last, line => line.StartsWith(": closed: the user's role changed", StringComparison.Ordinal));

        // Signed in again, with the role they have now: their own sessions only.
        using var demoted = await fixture.Api.ClientForAsync(name, Password);
        await using var userStream = await EventStream.OpenAsync(fixture.Api, demoted);
        var othersId = (await other.LaunchAsync()).Id;
        var ownId = (await demoted.LaunchAsync()).Id;
        await other.WaitForStateAsync(othersId, SessionState.Running);
        var seen = await userStream.ReadSessionsUntilAsync(s => s.Id == ownId && s.State == SessionState.Running);
        Assert.All(seen, s => Assert.Equal(ownId, s.Id));
    }

    [Fact]
    public async Task A_viewer_of_a_user_who_is_disabled_closes_with_the_reason()
    {
        using var user = await fixture.Api.NewUserClientAsync();
        using var admin = await fixture.Api.AdminClientAsync();
        var id = (await user.LaunchAsync()).Id;
        await user.WaitForStateAsync(id, SessionState.Running);
        using var viewer = await RfbViewer.ConnectAsync(fixture.Api.BaseAddress, await user.ConnectUrlAsync(id));
        await viewer.HandshakeAsync();

        (await admin.PatchAsJsonAsync($"/api/v1/users/{await user.UserIdAsync()}", new { disabled = true })).EnsureSuccessStatusCode();
        var clock = Stopwatch.StartNew();
        var reason = await ClosedPromptlyAsync(viewer, clock, 4401);
        Assert.Contains("the user is disabled", reason);
    }

    [Fact]
    public async Task An_admin_revokes_one_viewer_which_closes_while_the_other_stays_open_until_the_session_stops()
    {
        var owner = "owner-" + Guid.NewGuid().ToString("N")[..8];
        using var user = await fixture.Api.NewUserClientAsync(owner);
        using var admin = await fixture.Api.AdminClientAsync();
        using var stranger = await fixture.Api.NewUserClientAsync();
        var id = (await user.LaunchAsync()).Id;
        await user.WaitForStateAsync(id, SessionState.Running);

        using var revoked = await RfbViewer.ConnectAsync(fixture.Api.BaseAddress, await user.ConnectUrlAsync(id));
        var desktop = await revoked.HandshakeAsync();
        await ViewersAsync(user, id, count: 1);
        using var kept = await RfbViewer.ConnectAsync(fixture.Api.BaseAddress, await user.ConnectUrlAsync(id));
        await kept.HandshakeAsync();
        var viewers = await ViewersAsync(admin, id, count: 2);
        Assert.All(viewers, v => Assert.Equal(owner, v.Username));
        Assert.All(viewers, v => Assert.False(string.IsNullOrEmpty(v.Address)));
        Assert.True(viewers[0].Bytes > 0, viewers[0].ToString());
        Assert.Equal(HttpStatusCode.NotFound, (await stranger.GetAsync($"/api/v1/sessions/{id}/viewers")).StatusCode);
        var revokedId = viewers[0].Id;
        var keptId = viewers[1].Id;

        Assert.Equal(HttpStatusCode.NotFound, (await stranger.DeleteAsync($"/api/v1/sessions/{id}/viewers/{revokedId}")).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"/api/v1/sessions/{id}/viewers/{revokedId}")).StatusCode);
        var clock = Stopwatch.StartNew();
        var reason = await ClosedPromptlyAsync(revoked, clock, 4403);
        Assert.Equal($"the viewer was revoked by {ApiFactory.AdminUsername}", reason);
        Assert.Equal(HttpStatusCode.NotFound, (await admin.DeleteAsync($"/api/v1/sessions/{id}/viewers/{revokedId}")).StatusCode);

        // The other viewer still gets its screens.
        var update = await kept.RequestFullUpdateAsync(desktop);
        Assert.True(update.Rectangles > 0);
        var left = await ViewersAsync(user, id, count: 1);
        Assert.Equal(keptId, left[0].Id);

        // And closes, saying why, once the session stops.
        (await user.DeleteAsync($"/api/v1/sessions/{id}")).EnsureSuccessStatusCode();
        clock.Restart();
        reason = await ClosedPromptlyAsync(kept, clock, 4410);
        Assert.StartsWith("the session is ", reason);
    }

    [Fact]
    public async Task An_admin_viewing_a_users_session_is_audited_and_shown_to_the_owner()
    {
        var owner = "watched-" + Guid.NewGuid().ToString("N")[..8];
        using var user = await fixture.Api.NewUserClientAsync(owner);
        using var admin = await fixture.Api.AdminClientAsync();
        var id = (await user.LaunchAsync()).Id;
        await user.WaitForStateAsync(id, SessionState.Running);
        Assert.Null((await user.WaitForStateAsync(id, SessionState.Running)).LastViewedByAdmin);

        var before = DateTimeOffset.UtcNow.AddSeconds(-1);
        using (var viewer = await RfbViewer.ConnectAsync(fixture.Api.BaseAddress, await admin.ConnectUrlAsync(id)))
        {
            await viewer.RequestFullUpdateAsync(await viewer.HandshakeAsync());
            await viewer.Socket.CloseAsync(System.Net.WebSockets.WebSocketCloseStatus.NormalClosure, "done", CancellationToken.None);
        }

        var connected = (await AuditAsync(admin, id, "session.viewer_connected")).Single();
        Assert.Equal(ApiFactory.AdminUsername, connected.Actor);
        Assert.Equal(owner, connected.Details.GetProperty("owner").GetString());
        Assert.True(connected.Details.GetProperty("admin").GetBoolean());
        Assert.False(string.IsNullOrEmpty(connected.Details.GetProperty("address").GetString()));

        var disconnected = await Eventually.ValueAsync(async () => await AuditAsync(admin, id, "session.viewer_disconnected") is [var row] ? row : null,
            TimeSpan.FromSeconds(10), "the viewer's disconnection to be audited");
        var details = disconnected.Details;
        Assert.Equal(ApiFactory.AdminUsername, disconnected.Actor);
        Assert.Equal(owner, details.GetProperty("owner").GetString());
        Assert.True(details.GetProperty("bytes").GetInt64() > 0, details.ToString());
        Assert.True(details.GetProperty("duration_seconds").GetDouble() >= 0, details.ToString());
        Assert.Equal(connected.Details.GetProperty("viewer_id").GetGuid(), details.GetProperty("viewer_id").GetGuid());

        // The owner sees who looked, and when.
        var session = await (await user.GetAsync($"/api/v1/sessions/{id}")).AssertJsonAsync<SessionResponse>(HttpStatusCode.OK);
        var viewedBy = Assert.IsType<AdminViewing>(session.LastViewedByAdmin);
        Assert.Equal(ApiFactory.AdminUsername, viewedBy.Username);
        Assert.InRange(viewedBy.At, before, DateTimeOffset.UtcNow.AddSeconds(1));

        // The owner viewing their own session is audited too, but is no admin's view.
        using (var own = await RfbViewer.ConnectAsync(fixture.Api.BaseAddress, await user.ConnectUrlAsync(id)))
        {
            await own.HandshakeAsync();
        }

        var views = await Eventually.ValueAsync(async () => await AuditAsync(admin, id, "session.viewer_connected") is { Count: 2 } rows ? rows : null,
            TimeSpan.FromSeconds(10), "the owner's view to be audited");
        Assert.Contains(views, v => v.Actor == owner && !v.Details.GetProperty("admin").GetBoolean());
    }

    [Fact]
    public async Task Another_api_instance_lists_and_revokes_a_viewer_and_a_dead_instances_rows_do_not_linger()
    {
        await using var second = new ApiFactory(fixture.Api.ConnectionString).Start();
        using var user = await fixture.Api.NewUserClientAsync();
        using var adminElsewhere = await second.AdminClientAsync();
        var id = (await user.LaunchAsync()).Id;
        await user.WaitForStateAsync(id, SessionState.Running);

        // A viewer left behind by an instance that died: never refreshed again.
        await using (var connection = new Npgsql.NpgsqlConnection(fixture.Api.ConnectionString))
        {
            await Dapper.SqlMapper.ExecuteAsync(connection,
                "INSERT INTO session_viewers (id, session_id, user_id, username, seen_at) VALUES (gen_random_uuid(), @id, gen_random_uuid(), 'ghost', now() - interval '2 minutes')",
                new { id });
        }

        // The tunnel runs on the instance that holds the agent; the admin asks the other one.
        using var viewer = await RfbViewer.ConnectAsync(fixture.Api.BaseAddress, await user.ConnectUrlAsync(id));
        await viewer.HandshakeAsync();
        var viewerId = (await ViewersAsync(adminElsewhere, id, count: 1)).Single().Id;

        // Opening or refreshing a live viewer sweeps the dead instance's row away.
        await Eventually.TrueAsync(async () =>
        {
            await using var connection = new Npgsql.NpgsqlConnection(fixture.Api.ConnectionString);
            return await Dapper.SqlMapper.ExecuteScalarAsync<long>(connection, "SELECT count(*) FROM session_viewers WHERE session_id = @id", new { id }) == 1;
        }, TimeSpan.FromSeconds(20), "the dead instance's viewer row to be deleted");

        Assert.Equal(HttpStatusCode.NoContent, (await adminElsewhere.DeleteAsync($"/api/v1/sessions/{id}/viewers/{viewerId}")).StatusCode);
        var clock = Stopwatch.StartNew();
        var reason = await ClosedPromptlyAsync(viewer, clock, 4403);
        Assert.StartsWith("the viewer was revoked", reason);
        await ViewersAsync(user, id, count: 0);
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

    /// <summary>GET /api/v1/sessions/events, read line by line.</summary>
    private sealed class EventStream(HttpClient client, HttpResponseMessage response, StreamReader reader) : IAsyncDisposable
    {
        public static async Task<EventStream> OpenAsync(ApiFactory api, HttpClient signedIn)
        {
            var client = api.CreateClient();
            client.Timeout = Timeout.InfiniteTimeSpan;
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", signedIn.DefaultRequestHeaders.Authorization!.Parameter);
            var response = await client.GetAsync("/api/v1/sessions/events", HttpCompletionOption.ResponseHeadersRead);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
            Assert.Equal(": connected", await reader.ReadLineAsync());
            return new EventStream(client, response, reader);
        }

        /// <summary>Reads until the server ends the stream; returns the lines read.</summary>
        public async Task<List<string>> ReadToEndAsync(TimeSpan timeout)
        {
            using var cts = new CancellationTokenSource(timeout);
            var lines = new List<string>();
            while (await reader.ReadLineAsync(cts.Token) is { } line)
            {
                lines.Add(line);
            }

            return lines;
        }

        /// <summary>The sessions the stream sends, up to and with the first that <paramref name="until"/> accepts.</summary>
        public async Task<List<SessionResponse>> ReadSessionsUntilAsync(Func<SessionResponse, bool> until)
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            var sessions = new List<SessionResponse>();
            while (await reader.ReadLineAsync(cts.Token) is { } line)
            {
                if (line.StartsWith("data: ", StringComparison.Ordinal))
                {
                    var session = JsonSerializer.Deserialize<SessionResponse>(line["data: ".Length..], ApiJson.Options)!;
                    sessions.Add(session);
                    if (until(session))
                    {
                        return sessions;
                    }
                }
            }

            throw new InvalidOperationException("the events stream ended");
        }

        public ValueTask DisposeAsync()
        {
            reader.Dispose();
            response.Dispose();
            client.Dispose();
            return ValueTask.CompletedTask;
        }
    }

    /// <summary>
    /// Waits for the viewer to close, which must come within seconds of <paramref name="since"/> (a right taken back
    /// stops working within seconds), with <paramref name="code"/>; returns the close reason.
    /// </summary>
    private static async Task<string?> ClosedPromptlyAsync(RfbViewer viewer, Stopwatch since, int code)
    {
        var (status, reason) = await viewer.WaitForCloseAsync();
        Assert.True(since.Elapsed < Within, $"the viewer closed after {since.Elapsed}");
        Assert.Equal(code, status);
        return reason;
    }
}
