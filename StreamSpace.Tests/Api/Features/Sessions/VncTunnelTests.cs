using System.Net;
using System.Net.Http.Headers;
using StreamSpace.Contracts;
using StreamSpace.Contracts.Api;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Api.Features.Sessions;

public sealed class VncTunnelTests(SessionFixture fixture) : IClassFixture<SessionFixture>
{
    [Fact]
    public async Task Two_sessions_on_one_agent_stream_side_by_side_without_crossed_bytes_and_a_stalled_viewer_slows_neither()
    {
        using var user = await fixture.Api.NewUserClientAsync();
        var stalledId = (await user.LaunchAsync()).Id;
        var busyId = (await user.LaunchAsync()).Id;
        await user.WaitForStateAsync(stalledId, SessionState.Running);
        await user.WaitForStateAsync(busyId, SessionState.Running);

        using var stalled = await RfbViewer.ConnectAsync(fixture.Api.BaseAddress, await user.ConnectUrlAsync(stalledId));
        using var busy = await RfbViewer.ConnectAsync(fixture.Api.BaseAddress, await user.ConnectUrlAsync(busyId));
        var stalledDesktop = await stalled.HandshakeAsync();
        var busyDesktop = await busy.HandshakeAsync();
        Assert.Equal(stalledId, stalledDesktop.Name);
        Assert.Equal(busyId, busyDesktop.Name);

        // The stalled viewer asks for many full Raw screens (4 MB each) and never reads them.
        await stalled.UseRawEncodingAsync();
        for (var i = 0; i < 10; i++)
        {
            await stalled.SendAsync(FullUpdateRequest(stalledDesktop));
        }

        // The other viewer, on the same agent socket, still gets every full screen it asks for.
        await busy.UseRawEncodingAsync();
        for (var i = 0; i < 10; i++)
        {
            Assert.Equal(busyDesktop.Width * busyDesktop.Height * 4L, await busy.ReadFullRawUpdateAsync(busyDesktop));
        }

        // And the stalled viewer's data was held back by flow control, not lost: it reads its first screen intact.
        Assert.Equal(stalledDesktop.Width * stalledDesktop.Height * 4L, await stalled.ReadFullRawUpdateAsync(stalledDesktop));
    }

    [Fact]
    public async Task An_expired_ticket_is_refused()
    {
        using var admin = await fixture.Api.AdminClientAsync();
        var id = (await admin.LaunchAsync()).Id;
        await admin.WaitForStateAsync(id, SessionState.Running);
        var url = await admin.ConnectUrlAsync(id);

        // Expiry is PostgreSQL's clock, the one every replica shares: its tickets' 30 s have passed (the VNC ticket and
        // the audio one issued beside it: the default template has sound).
        await using (var db = new Npgsql.NpgsqlConnection(fixture.Api.ConnectionString))
        {
            await db.OpenAsync();
            await using var expire = new Npgsql.NpgsqlCommand("UPDATE vnc_tickets SET expires_at = now() - interval '1 second' WHERE session_id = $1", db)
            {
                Parameters = { new() { Value = id } },
            };
            Assert.Equal(2, await expire.ExecuteNonQueryAsync());
        }

        var refused = await Assert.ThrowsAsync<System.Net.WebSockets.WebSocketException>(() => RfbViewer.ConnectAsync(fixture.Api.BaseAddress, url));
        Assert.Contains("401", refused.Message);
    }

    [Fact]
    public async Task A_ticket_opens_only_the_socket_it_was_issued_for()
    {
        using var admin = await fixture.Api.AdminClientAsync();
        var id = (await admin.LaunchAsync()).Id;
        await admin.WaitForStateAsync(id, SessionState.Running);
        var tickets = await (await admin.PostAsync($"/api/v1/sessions/{id}/connect", null)).AssertJsonAsync<ConnectResponse>(HttpStatusCode.OK);
        var vncTicket = TicketOf(tickets.Url);
        var audioTicket = TicketOf(tickets.AudioUrl ?? throw new InvalidOperationException("the default template has sound, so an audio URL"));

        // The audio ticket does not open the screen, nor the VNC ticket the sound.
        var asViewer = await Assert.ThrowsAsync<System.Net.WebSockets.WebSocketException>(() =>
            RfbViewer.ConnectAsync(fixture.Api.BaseAddress, $"/vnc/{id}?ticket={audioTicket}"));
        Assert.Contains("401", asViewer.Message);
        using var listener = new System.Net.WebSockets.ClientWebSocket();
        var asListener = await Assert.ThrowsAsync<System.Net.WebSockets.WebSocketException>(() =>
            listener.ConnectAsync(new UriBuilder(new Uri(fixture.Api.BaseAddress, $"/audio/{id}?ticket={vncTicket}")) { Scheme = "ws" }.Uri, CancellationToken.None));
        Assert.Contains("401", asListener.Message);

        // Each is taken by the refusal: shown at the right socket afterwards, it is refused too.
        var reused = await Assert.ThrowsAsync<System.Net.WebSockets.WebSocketException>(() => RfbViewer.ConnectAsync(fixture.Api.BaseAddress, tickets.Url));
        Assert.Contains("401", reused.Message);
    }

    private static string TicketOf(string url) => url[(url.IndexOf("ticket=", StringComparison.Ordinal) + "ticket=".Length)..];

    [Fact]
    public async Task Session_changes_are_pushed_live_to_the_owner()
    {
        using var user = await fixture.Api.NewUserClientAsync();
        var token = user.DefaultRequestHeaders.Authorization!.Parameter;
        using var events = fixture.Api.CreateClient();
        events.Timeout = Timeout.InfiniteTimeSpan;
        events.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using var response = await events.GetAsync("/api/v1/sessions/events", HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        Assert.Equal(": connected", await reader.ReadLineAsync());

        var id = (await user.LaunchAsync()).Id;
        var seen = new List<SessionState>();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (!seen.Contains(SessionState.Running))
        {
            var line = await reader.ReadLineAsync(timeout.Token);
            if (line?.StartsWith("data: ", StringComparison.Ordinal) == true)
            {
                var session = System.Text.Json.JsonSerializer.Deserialize<SessionResponse>(line["data: ".Length..], ApiJson.Options)!;
                Assert.Equal(id, session.Id);
                seen.Add(session.State);
            }
        }

        // Each event carries the session as it is when read, so under load a quick step can be folded into the next
        // one; what the owner sees always moves forward and arrives at running.
        SessionState[] lifecycle = [SessionState.Pending, SessionState.Starting, SessionState.Running];
        Assert.Equal(seen.OrderBy(state => Array.IndexOf(lifecycle, state)), seen);
        Assert.All(seen, state => Assert.Contains(state, lifecycle));
    }

    private static byte[] FullUpdateRequest(RfbDesktop desktop)
    {
        var request = new byte[10];
        request[0] = 3;
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(request.AsSpan(6), (ushort)desktop.Width);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(request.AsSpan(8), (ushort)desktop.Height);
        return request;
    }
}
