using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Playwright;
using StreamSpace.Contracts;
using StreamSpace.Contracts.Api;
using StreamSpace.Tests.Api.Features.Sessions;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Web;

/// <summary>The web UI in a real browser against the real stack: login, catalog, viewer, my sessions and admin pages.</summary>
public sealed class WebUiTests(WebFixture fixture) : IClassFixture<WebFixture>
{
    [Fact]
    public async Task A_wrong_password_shows_an_error_and_the_right_one_reaches_the_catalog()
    {
        var username = await fixture.NewUserAsync();
        var page = await fixture.NewPageAsync();

        await page.GotoAsync("login");
        await page.GetByLabel("Username").FillAsync(username);
        await page.GetByLabel("Password").FillAsync("not-the-password");
        await page.GetByRole(AriaRole.Button, new() { Name = "Log in" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Alert)).ToContainTextAsync("Invalid username or password");

        await WebFixture.LogInAsync(page, username, WebFixture.UserPassword);
        await Assertions.Expect(page.GetByRole(AriaRole.Button, new() { Name = "Launch Terminal desktop" })).ToBeVisibleAsync();
        await WebFixture.ScreenshotAsync(page, "catalog.png");
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task Launching_xterm_opens_a_viewer_with_a_desktop_that_takes_keyboard_and_clipboard_input()
    {
        var username = await fixture.NewUserAsync("viewer");
        var page = await fixture.NewPageAsync();
        await WebFixture.LogInAsync(page, username, WebFixture.UserPassword);

        await page.GetByRole(AriaRole.Button, new() { Name = "Launch Terminal desktop" }).ClickAsync();
        // Progress shows on the card, then the viewer opens by itself once the session runs.
        await page.WaitForURLAsync("**/sessions/*/view", new() { Timeout = 40_000 });
        await Assertions.Expect(page.Locator("#viewer-status")).ToHaveTextAsync("Connected", new() { Timeout = 20_000 });

        var canvas = page.Locator("#viewer-screen canvas");
        await Eventually.TrueAsync(async () => await DistinctColoursAsync(canvas) > 1, TimeSpan.FromSeconds(20), "the desktop to be drawn");

        // Focus the xterm, wherever openbox placed it, and type into it.
        var (x, y) = await XtermPositionAsync(canvas, page.Url);
        await WebFixture.ScreenshotAsync(page, "viewer.png");
        await page.Mouse.ClickAsync(x, y);
        // Openbox focuses the window it was clicked in after the click arrives: keys typed before then reach no window.
        await Eventually.TrueAsync(async () => (await ActiveWindowClassAsync(page.Url)).Contains("XTerm", StringComparison.Ordinal),
            TimeSpan.FromSeconds(15), "openbox to focus the clicked xterm");
        await page.Keyboard.TypeAsync("touch ~/from-the-browser", new() { Delay = 20 });
        await page.Keyboard.PressAsync("Enter");
        using var api = await fixture.Api.ClientForAsync(username, WebFixture.UserPassword);
        var home = fixture.Agent.HomeOf(await api.UserIdAsync());
        await Eventually.TrueAsync(() => Task.FromResult(File.Exists(Path.Combine(home, "from-the-browser"))),
            TimeSpan.FromSeconds(15), "the typed command to create ~/from-the-browser");

        // The clipboard panel's text becomes the session's selection; a middle click pastes it into the xterm.
        await page.GetByRole(AriaRole.Button, new() { Name = "Clipboard" }).ClickAsync();
        await page.GetByLabel("Clipboard text").FillAsync("touch ~/from-the-clipboard");
        await page.GetByRole(AriaRole.Button, new() { Name = "Send to session" }).ClickAsync();
        (x, y) = await XtermPositionAsync(canvas, page.Url);
        // The text reaches the session's selection a moment after the click, and a paste is a round trip of its own
        // (xterm asks the X server for the selection): a middle click that comes too early pastes nothing, and an Enter
        // that overtakes its paste runs an empty line while the pasted text waits on the next one. So paste and press
        // Enter until the command has run; a repeated paste only adds a second harmless touch to the line.
        var pasted = Path.Combine(home, "from-the-clipboard");
        await Eventually.TrueAsync(async () =>
        {
            await page.Mouse.ClickAsync(x, y, new() { Button = MouseButton.Middle });
            await page.Keyboard.PressAsync("Enter");
            return await WithinAsync(() => File.Exists(pasted), TimeSpan.FromSeconds(2));
        }, TimeSpan.FromSeconds(20), "the pasted command to create ~/from-the-clipboard");
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task The_viewer_reconnects_with_a_new_ticket_when_the_connection_drops()
    {
        using var session = await NewUserWithRunningSessionAsync("reconnect");
        var (username, api, id) = session;

        var page = await fixture.NewPageAsync();
        await WebFixture.LogInAsync(page, username, WebFixture.UserPassword);
        var sockets = new List<string>();
        page.WebSocket += (_, socket) =>
        {
            lock (sockets)
            {
                sockets.Add(socket.Url);
            }
        };
        await page.GotoAsync($"sessions/{id}/view");
        var status = page.Locator("#viewer-status");
        await Assertions.Expect(status).ToHaveTextAsync("Connected");

        // Hibernating ends the session's display, which drops the viewer's connection; once woken, the viewer is back.
        (await api.PostAsync($"/api/v1/sessions/{id}/hibernate", null)).EnsureSuccessStatusCode();
        await Assertions.Expect(status).Not.ToHaveTextAsync("Connected", new() { Timeout = 30_000 });
        await api.WaitForStateAsync(id, SessionState.Hibernated);
        (await api.PostAsync($"/api/v1/sessions/{id}/wake", null)).EnsureSuccessStatusCode();
        await Assertions.Expect(status).ToHaveTextAsync("Connected", new() { Timeout = 40_000 });

        string[] vncSockets;
        lock (sockets)
        {
            vncSockets = [.. sockets.Where(url => url.Contains("/vnc/", StringComparison.Ordinal))];
        }

        Assert.True(vncSockets.Length >= 2, $"expected a reconnection, saw {vncSockets.Length} VNC connection(s)");
        // The browser opened each on the API itself, cross-origin from the page, with the ticket as its credential.
        Assert.All(vncSockets, url => Assert.Equal(fixture.Api.BaseAddress.Port, new Uri(url).Port));
        Assert.NotEqual(fixture.WebAddress.Port, fixture.Api.BaseAddress.Port);
        // Tickets are single-use: each connection came with a fresh one.
        Assert.Equal(vncSockets.Length, vncSockets.Select(Ticket).Distinct().Count());
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task Interactive_pages_run_their_circuit_over_one_websocket_without_a_negotiate_request_so_any_replica_serves_it()
    {
        var username = await fixture.NewUserAsync("circuit");
        var page = await fixture.NewPageAsync();
        var negotiations = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var sockets = new System.Collections.Concurrent.ConcurrentQueue<string>();
        page.Request += (_, request) =>
        {
            if (request.Url.Contains("/_blazor/negotiate", StringComparison.Ordinal))
            {
                negotiations.Enqueue(request.Url);
            }
        };
        page.WebSocket += (_, socket) => sockets.Enqueue(socket.Url);

        await WebFixture.LogInAsync(page, username, WebFixture.UserPassword);
        await page.GetByRole(AriaRole.Link, new() { Name = "My sessions" }).ClickAsync();
        // Live once the circuit runs.
        await Assertions.Expect(page.Locator(".live-indicator")).ToHaveTextAsync("Live");

        // A negotiated connection is valid only on the replica that answered the negotiate; a circuit that opens its
        // WebSocket straight away can land on any replica, so the web UI needs no sticky sessions.
        Assert.Empty(negotiations);
        Assert.Contains(sockets, url => new Uri(url).AbsolutePath == "/_blazor");
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task My_sessions_shows_a_stop_made_through_the_api_without_a_reload()
    {
        using var session = await NewUserWithRunningSessionAsync("live");
        var (username, api, id) = session;

        var page = await fixture.NewPageAsync();
        await WebFixture.LogInAsync(page, username, WebFixture.UserPassword);
        await page.GetByRole(AriaRole.Link, new() { Name = "My sessions" }).ClickAsync();
        var row = page.Locator($"tr[data-session-id='{id}']");
        await Assertions.Expect(row.Locator(".state")).ToHaveTextAsync("running");
        // The page is live once its circuit runs; from then on no reload happens.
        await Assertions.Expect(page.Locator(".live-indicator")).ToHaveTextAsync("Live");
        await page.EvaluateAsync("window.__notReloaded = true");

        (await api.DeleteAsync($"/api/v1/sessions/{id}")).EnsureSuccessStatusCode();

        await Assertions.Expect(row.Locator(".state")).ToHaveTextAsync("stopped", new() { Timeout = 30_000 });
        Assert.True(await page.EvaluateAsync<bool>("window.__notReloaded === true"));
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task A_viewer_an_admin_revokes_says_so_and_does_not_reconnect()
    {
        using var session = await NewUserWithRunningSessionAsync("revoked");
        var (username, api, id) = session;
        using var admin = await fixture.Api.AdminClientAsync();

        var page = await fixture.NewPageAsync();
        await WebFixture.LogInAsync(page, username, WebFixture.UserPassword);
        await page.GotoAsync($"sessions/{id}/view");
        var status = page.Locator("#viewer-status");
        await Assertions.Expect(status).ToHaveTextAsync("Connected");

        var viewer = await Eventually.ValueAsync(async () =>
            await (await admin.GetAsync($"/api/v1/sessions/{id}/viewers")).AssertJsonAsync<List<ViewerResponse>>(HttpStatusCode.OK) is [var only] ? only : null,
            TimeSpan.FromSeconds(10), "the page's viewer to be listed");
        Assert.Equal(username, viewer.Username);
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"/api/v1/sessions/{id}/viewers/{viewer.Id}")).StatusCode);

        // Reconnecting would undo the revocation: the page says why it closed, and no more (a reconnect is announced
        // in the same handler, as "…; reconnecting in 1 s…").
        await Assertions.Expect(status).ToHaveTextAsync($"Disconnected: the viewer was revoked by {ApiFactory.AdminUsername}", new() { Timeout = 10_000 });
        Assert.Empty(await (await admin.GetAsync($"/api/v1/sessions/{id}/viewers")).AssertJsonAsync<List<ViewerResponse>>(HttpStatusCode.OK));
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task My_sessions_shows_live_that_an_admin_viewed_the_session()
    {
        using var session = await NewUserWithRunningSessionAsync("watched");
        var (username, api, id) = session;
        using var admin = await fixture.Api.AdminClientAsync();

        var page = await fixture.NewPageAsync();
        await WebFixture.LogInAsync(page, username, WebFixture.UserPassword);
        await page.GetByRole(AriaRole.Link, new() { Name = "My sessions" }).ClickAsync();
        var row = page.Locator($"tr[data-session-id='{id}']");
        await Assertions.Expect(row.Locator(".state")).ToHaveTextAsync("running");
        await Assertions.Expect(page.Locator(".live-indicator")).ToHaveTextAsync("Live");
        await Assertions.Expect(row.Locator(".viewed-by-admin")).ToHaveCountAsync(0);

        using (var viewer = await RfbViewer.ConnectAsync(fixture.Api.BaseAddress, await admin.ConnectUrlAsync(id)))
        {
            await viewer.HandshakeAsync();
        }

        await Assertions.Expect(row.Locator(".viewed-by-admin")).ToContainTextAsync($"viewed by admin {ApiFactory.AdminUsername} at", new() { Timeout = 15_000 });
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task An_admin_sees_the_agent_online()
    {
        var page = await fixture.NewPageAsync();
        await WebFixture.LogInAsync(page, ApiFactory.AdminUsername, ApiFactory.AdminPassword);
        await page.GetByRole(AriaRole.Link, new() { Name = "Agents" }).ClickAsync();
        var row = page.Locator($"tr[data-agent-id='{WebFixture.AgentId}']");
        await Assertions.Expect(row).ToContainTextAsync("online");
        await WebFixture.ScreenshotAsync(page, "admin-agents.png");
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task An_admin_limits_a_template_to_a_new_group_on_the_groups_page_and_only_its_member_sees_it_in_the_catalog()
    {
        var template = "team-" + Guid.NewGuid().ToString("N")[..6];
        using (var api = await fixture.Api.AdminClientAsync())
        {
            Assert.Equal(HttpStatusCode.Created, (await api.PostAsJsonAsync("/api/v1/templates", new { name = template, display_name = "Team tool", command = "xterm" })).StatusCode);
        }

        var (member, outsider) = (await fixture.NewUserAsync("member"), await fixture.NewUserAsync("outsider"));
        var group = "Team " + template;
        var admin = await fixture.NewPageAsync();
        await WebFixture.LogInAsync(admin, ApiFactory.AdminUsername, ApiFactory.AdminPassword);
        await admin.GetByRole(AriaRole.Link, new() { Name = "Groups" }).ClickAsync();
        await admin.GetByLabel("Name", new() { Exact = true }).FillAsync(group);
        await admin.GetByRole(AriaRole.Button, new() { Name = "Create group" }).ClickAsync();
        var section = admin.Locator($"section[data-group='{group}']");
        await section.GetByLabel("Sessions at once").FillAsync("3");
        await section.GetByRole(AriaRole.Button, new() { Name = "Save quotas" }).ClickAsync();
        await Assertions.Expect(admin.GetByRole(AriaRole.Status)).ToHaveTextAsync($"Saved the quotas of {group}.");
        await section.GetByLabel("Username").FillAsync(member);
        await section.GetByRole(AriaRole.Button, new() { Name = "Add member" }).ClickAsync();
        await Assertions.Expect(section.Locator(".group-members")).ToContainTextAsync(member);
        await section.GetByLabel("Template", new() { Exact = true }).SelectOptionAsync(template);
        await section.GetByRole(AriaRole.Button, new() { Name = "Limit to this group" }).ClickAsync();
        await Assertions.Expect(section.Locator(".group-templates")).ToContainTextAsync(template);
        await Assertions.Expect(section.GetByLabel("Sessions at once")).ToHaveValueAsync("3");
        await WebFixture.ScreenshotAsync(admin, "admin-groups.png");
        await admin.Context.CloseAsync();

        foreach (var (username, sees) in new[] { (member, 1), (outsider, 0) })
        {
            var page = await fixture.NewPageAsync();
            await WebFixture.LogInAsync(page, username, WebFixture.UserPassword);
            await Assertions.Expect(page.Locator("[data-template='xterm']")).ToHaveCountAsync(1);
            await Assertions.Expect(page.Locator($"[data-template='{template}']")).ToHaveCountAsync(sees);
            await page.Context.CloseAsync();
        }
    }

    [Fact]
    public async Task The_health_page_shows_the_diagnostics_with_failures_first_and_probes_vnc_on_request()
    {
        using var user = await fixture.Api.NewUserClientAsync();
        var id = (await user.LaunchAsync()).Id;
        await user.WaitForStateAsync(id, SessionState.Running);
        var page = await fixture.NewPageAsync();
        await WebFixture.LogInAsync(page, ApiFactory.AdminUsername, ApiFactory.AdminPassword);
        await page.GetByRole(AriaRole.Link, new() { Name = "Health" }).ClickAsync();

        var heartbeat = page.Locator($"tr[data-check-id='agents.heartbeat:{WebFixture.AgentId}']");
        await Assertions.Expect(heartbeat).ToContainTextAsync("OK");
        await Assertions.Expect(heartbeat).ToContainTextAsync("last heartbeat");
        await Assertions.Expect(page.Locator("#health-summary")).ToContainTextAsync("failing");
        // The probe runs only when asked for: it opens a tunnel to every running session.
        await Assertions.Expect(page.Locator($"tr[data-check-id='sessions.vnc:{id}']")).ToHaveCountAsync(0);

        await page.GetByLabel("Also probe each running session's VNC server").CheckAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Run the checks" }).ClickAsync();
        var probe = page.Locator($"tr[data-check-id='sessions.vnc:{id}']");
        await Assertions.Expect(probe).ToContainTextAsync("reached it and authenticated");

        // Whatever fails or warns is listed before everything that is ok.
        var statuses = await page.Locator("tr[data-status]").EvaluateAllAsync<string[]>("rows => rows.map(r => r.dataset.status)");
        Assert.Equal(statuses.OrderBy(s => s switch { "fail" => 0, "warn" => 1, _ => 2 }), statuses);
        await WebFixture.ScreenshotAsync(page, "admin-health.png");
        await page.Context.CloseAsync();
    }

    [Theory]
    [InlineData("admin/agents")]
    [InlineData("admin/users")]
    [InlineData("admin/templates")]
    [InlineData("admin/sessions")]
    [InlineData("admin/audit")]
    [InlineData("admin/health")]
    [InlineData("admin/groups")]
    public async Task A_plain_user_is_refused_the_admin_pages(string path)
    {
        var username = await fixture.NewUserAsync("plain");
        var page = await fixture.NewPageAsync();
        await WebFixture.LogInAsync(page, username, WebFixture.UserPassword);
        await Assertions.Expect(page.GetByRole(AriaRole.Link, new() { Name = "Agents" })).ToHaveCountAsync(0);

        await page.GotoAsync(path);
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Not allowed" })).ToBeVisibleAsync();
        await Assertions.Expect(page.Locator("table")).ToHaveCountAsync(0);
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task The_proxy_forwards_the_api_with_the_cookie_as_bearer_and_refuses_state_changes_without_the_csrf_header()
    {
        var username = await fixture.NewUserAsync("proxy");
        var page = await fixture.NewPageAsync();
        await WebFixture.LogInAsync(page, username, WebFixture.UserPassword);

        var me = await page.APIRequest.GetAsync("api/v1/auth/me");
        Assert.Equal((int)HttpStatusCode.OK, me.Status);
        Assert.Equal(username, (await me.JsonAsync())?.GetProperty("username").GetString());

        var forged = await page.APIRequest.PostAsync("api/v1/sessions", new() { DataObject = new { template = "xterm" } });
        Assert.Equal((int)HttpStatusCode.BadRequest, forged.Status);

        // The token stays on the server: nothing the page's script can read holds it.
        var cookies = await page.EvaluateAsync<string>("document.cookie");
        Assert.DoesNotContain("streamspace_auth", cookies);
        await page.Context.CloseAsync();
    }

    /// <summary>A new user, signed in to the API, with a running xterm session.</summary>
    private async Task<RunningSession> NewUserWithRunningSessionAsync(string prefix)
    {
        var username = await fixture.NewUserAsync(prefix);
        var api = await fixture.Api.ClientForAsync(username, WebFixture.UserPassword);
        var id = (await api.LaunchAsync()).Id;
        await api.WaitForStateAsync(id, SessionState.Running);
        return new RunningSession(username, api, id);
    }

    private sealed record RunningSession(string Username, HttpClient Api, string Id) : IDisposable
    {
        public void Dispose() => Api.Dispose();
    }

    private static string? Ticket(string url) => System.Web.HttpUtility.ParseQueryString(new Uri(url).Query)["ticket"];

    /// <summary>
    /// Where the xterm is on the page: the centre of the canvas's white pixels (its background, on a black desktop); near
    /// white counts too, since the Tight encoding may send it as JPEG when the machine is busy.
    /// Openbox places the window differently from run to run.
    /// </summary>
    private async Task<(float X, float Y)> XtermPositionAsync(ILocator canvas, string viewerUrl)
    {
        (float X, float Y)? position = null;
        try
        {
            await Eventually.TrueAsync(async () => (position = await WhitePixelsCentreAsync(canvas)) is not null,
                TimeSpan.FromSeconds(30), "the xterm window to appear");
        }
        catch (TimeoutException e)
        {
            // Tells a window that never opened from one the viewer was never sent.
            throw new TimeoutException($"{e.Message} The session's X server has these windows: {await XWindowsAsync(viewerUrl)}", e);
        }

        return position!.Value;
    }

    /// <summary>The window tree of the viewed session's X server, read as the agent can (with the display's X authority).</summary>
    private async Task<string> XWindowsAsync(string viewerUrl)
    {
        var result = await XClientAsync(viewerUrl, "xwininfo", ["-root", "-tree"]);
        return result.StandardOutput + result.StandardError;
    }

    /// <summary>The WM_CLASS of the window the window manager has focused in the viewed session, or "" when none is.</summary>
    private async Task<string> ActiveWindowClassAsync(string viewerUrl)
    {
        // "_NET_ACTIVE_WINDOW(WINDOW): window id # 0x400006"; openbox sets it on the client window it focuses.
        var active = (await XClientAsync(viewerUrl, "xprop", ["-root", "_NET_ACTIVE_WINDOW"])).StandardOutput;
        var id = active[(active.LastIndexOf(' ') + 1)..].Trim();
        if (!id.StartsWith("0x", StringComparison.Ordinal) || id == "0x0")
        {
            return "";
        }

        return (await XClientAsync(viewerUrl, "xprop", ["-id", id, "WM_CLASS"])).StandardOutput;
    }

    /// <summary>Runs an X client against the viewed session's X server, as the agent can (with the display's X authority).</summary>
    private Task<ProcessResult> XClientAsync(string viewerUrl, string program, string[] arguments) =>
        fixture.RunInSessionDisplayAsync(new Uri(viewerUrl).Segments[^2].TrimEnd('/'), program, arguments);

    /// <summary>Whether <paramref name="condition"/> comes true within <paramref name="timeout"/>.</summary>
    private static async Task<bool> WithinAsync(Func<bool> condition, TimeSpan timeout)
    {
        try
        {
            await Eventually.TrueAsync(() => Task.FromResult(condition()), timeout, "the condition");
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }

    private static async Task<(float X, float Y)?> WhitePixelsCentreAsync(ILocator canvas)
    {
        var box = (await canvas.BoundingBoxAsync())!;
        var centre = await canvas.EvaluateAsync<JsonElement>("""
            canvas => {
                const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
                let sumX = 0, sumY = 0, count = 0;
                for (let y = 0; y < canvas.height; y += 4) {
                    for (let x = 0; x < canvas.width; x += 4) {
                        const i = (y * canvas.width + x) * 4;
                        if (data[i] >= 240 && data[i + 1] >= 240 && data[i + 2] >= 240) { sumX += x; sumY += y; count++; }
                    }
                }
                return count === 0 ? null : { x: sumX / count / canvas.width, y: sumY / count / canvas.height };
            }
            """);
        if (centre.ValueKind != JsonValueKind.Object)
        {
            return null;
        }

        return (box.X + box.Width * centre.GetProperty("x").GetSingle(), box.Y + box.Height * centre.GetProperty("y").GetSingle());
    }

    /// <summary>How many distinct colours a sample of the canvas holds: 1 for a blank screen, many for a desktop.</summary>
    private static async Task<int> DistinctColoursAsync(ILocator canvas) => await canvas.EvaluateAsync<int>("""
        canvas => {
            const context = canvas.getContext('2d');
            const { data } = context.getImageData(0, 0, canvas.width, canvas.height);
            const colours = new Set();
            for (let i = 0; i < data.length; i += 4 * 97) {
                colours.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
            }
            return colours.size;
        }
        """);
}
