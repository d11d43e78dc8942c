using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.RegularExpressions;
using Microsoft.Playwright;
using StreamSpace.Contracts;
using StreamSpace.Contracts.Api;
using StreamSpace.Tests.Api.Features.Sessions;
using StreamSpace.Tests.Infrastructure;
using Xunit.Abstractions;

namespace StreamSpace.Tests.Web;

/// <summary>
/// The viewer in Debian's chromium against real Xvnc sessions: the desktop takes the viewer's size, and the clipboard
/// passes both ways (UTF-8 included) unless the template turns a direction off.
/// </summary>
public sealed partial class ViewerTests(WebFixture fixture, ITestOutputHelper output) : IClassFixture<WebFixture>
{
    private const string Utf8Text = "Grüße ✓ 日本";
    private static readonly string[] ClipboardPermissions = ["clipboard-read", "clipboard-write"];

    // Generous for a busy 2-core machine; the elapsed time is written to the test output.
    private static readonly TimeSpan FollowTimeout = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task The_desktop_takes_the_viewers_size_and_follows_a_resized_window()
    {
        var (username, id) = await NewUserWithRunningSessionAsync("resize");
        var page = await fixture.NewPageAsync();
        await WebFixture.LogInAsync(page, username, WebFixture.UserPassword);
        await page.GotoAsync($"sessions/{id}/view");
        await Assertions.Expect(page.Locator("#viewer-status")).ToHaveTextAsync("Connected");

        // The first size is the viewer's own, not the 1280x800 Xvnc started with.
        var first = await ScreenSizeAsync(page);
        Assert.NotEqual((1280, 800), first);
        await WaitForDesktopSizeAsync(page, id, first, "the first size");

        await page.SetViewportSizeAsync(1000, 700);
        var resized = await ScreenSizeAsync(page);
        Assert.NotEqual(first, resized);
        await WaitForDesktopSizeAsync(page, id, resized, "a resized window");
        await WebFixture.ScreenshotAsync(page, "viewer-resized.png");
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task Several_viewers_the_desktop_takes_the_size_of_the_one_resized_last()
    {
        var (username, id) = await NewUserWithRunningSessionAsync("resize2");
        var wide = await fixture.NewPageAsync();
        await WebFixture.LogInAsync(wide, username, WebFixture.UserPassword);
        await wide.GotoAsync($"sessions/{id}/view");
        await Assertions.Expect(wide.Locator("#viewer-status")).ToHaveTextAsync("Connected");
        await WaitForDesktopSizeAsync(wide, id, await ScreenSizeAsync(wide), "the first viewer's size");

        var narrow = await fixture.NewPageAsync();
        await narrow.SetViewportSizeAsync(900, 650);
        await WebFixture.LogInAsync(narrow, username, WebFixture.UserPassword);
        await narrow.GotoAsync($"sessions/{id}/view");
        await Assertions.Expect(narrow.Locator("#viewer-status")).ToHaveTextAsync("Connected");
        var narrowSize = await ScreenSizeAsync(narrow);
        await WaitForDesktopSizeAsync(narrow, id, narrowSize, "the second viewer's size");
        // The first viewer shows the desktop at the size the second one asked for, and does not take it back.
        await Eventually.TrueAsync(async () => await CanvasSizeAsync(wide) == narrowSize, FollowTimeout, "the first viewer to get the second's size");

        await wide.SetViewportSizeAsync(1100, 750);
        await WaitForDesktopSizeAsync(wide, id, await ScreenSizeAsync(wide), "the first viewer's new size");
        await wide.Context.CloseAsync();
        await narrow.Context.CloseAsync();
    }

    [Fact]
    public async Task Scale_instead_is_remembered_for_the_user_in_another_browser()
    {
        var (username, id) = await NewUserWithRunningSessionAsync("scale");
        var page = await fixture.NewPageAsync();
        await WebFixture.LogInAsync(page, username, WebFixture.UserPassword);
        await page.GotoAsync($"sessions/{id}/view");
        await Assertions.Expect(page.Locator("#viewer-status")).ToHaveTextAsync("Connected");
        // "Connected" comes before noVNC asks for its size: the desktop read below must be the size it asked for.
        await WaitForDesktopSizeAsync(page, id, await ScreenSizeAsync(page), "the first viewer's size");
        var scale = page.GetByLabel("Scale instead of resizing");
        await Assertions.Expect(scale).Not.ToBeCheckedAsync();
        var saved = page.WaitForResponseAsync(r => r.Url.EndsWith("/api/v1/users/me/viewer-preferences", StringComparison.Ordinal) && r.Request.Method == "PUT");
        await scale.CheckAsync();
        Assert.Equal((int)HttpStatusCode.OK, (await saved).Status);
        var desktop = await XScreenSizeAsync(id);
        await page.Context.CloseAsync();

        // Another browser (a fresh context: no shared storage) of the same user opens scaled: the desktop keeps the size
        // the first viewer gave it while the window changes.
        var other = await fixture.NewPageAsync();
        await other.SetViewportSizeAsync(1000, 700);
        await WebFixture.LogInAsync(other, username, WebFixture.UserPassword);
        await other.GotoAsync($"sessions/{id}/view");
        await Assertions.Expect(other.Locator("#viewer-status")).ToHaveTextAsync("Connected");
        await Assertions.Expect(other.GetByLabel("Scale instead of resizing")).ToBeCheckedAsync();
        await Eventually.TrueAsync(async () => await CanvasSizeAsync(other) == desktop, FollowTimeout, "the scaled viewer to show the desktop");
        Assert.NotEqual<(int, int)?>(await ScreenSizeAsync(other), desktop);
        Assert.Equal<(int, int)?>(desktop, await XScreenSizeAsync(id));
        using var api = await fixture.Api.ClientForAsync(username, WebFixture.UserPassword);
        var preferences = await (await api.GetAsync("/api/v1/users/me/viewer-preferences")).AssertJsonAsync<ViewerPreferences>(HttpStatusCode.OK);
        Assert.True(preferences.ScaleViewport);
        await other.Context.CloseAsync();
    }

    [Fact]
    public async Task Text_the_session_copies_reaches_the_browsers_clipboard_in_utf8()
    {
        var (username, id) = await NewUserWithRunningSessionAsync("copy");
        var page = await OpenViewerAsync(username, id, ClipboardPermissions);

        await SetSessionClipboardAsync(id, Utf8Text);

        await Eventually.TrueAsync(async () => await BrowserClipboardAsync(page) == Utf8Text, FollowTimeout, "the browser's clipboard to hold the session's text");
        await Assertions.Expect(page.GetByLabel("Clipboard text")).ToHaveValueAsync(Utf8Text);
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task Without_clipboard_permission_the_sessions_text_waits_in_the_panel_with_a_copy_button()
    {
        var (username, id) = await NewUserWithRunningSessionAsync("panel");
        var page = await OpenViewerAsync(username, id);

        await SetSessionClipboardAsync(id, Utf8Text);

        await Assertions.Expect(page.GetByLabel("Clipboard text")).ToHaveValueAsync(Utf8Text, new() { Timeout = 10_000 });
        await page.GetByRole(AriaRole.Button, new() { Name = "Clipboard" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Button, new() { Name = "Copy", Exact = true })).ToBeVisibleAsync();
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task Ctrl_v_in_the_viewer_offers_the_browsers_clipboard_to_the_session_in_utf8()
    {
        var (username, id) = await NewUserWithRunningSessionAsync("paste");
        var page = await OpenViewerAsync(username, id, ClipboardPermissions);

        await page.EvaluateAsync("text => navigator.clipboard.writeText(text)", Utf8Text);
        await page.Locator("#viewer-screen canvas").FocusAsync();
        await page.Keyboard.PressAsync("Control+V");

        await Eventually.TrueAsync(async () => await SessionClipboardAsync(id) == Utf8Text, FollowTimeout, "the session's clipboard to hold the browser's text");
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task A_template_with_session_to_browser_off_keeps_the_sessions_text_from_the_browser()
    {
        using var admin = await fixture.Api.AdminClientAsync();
        var template = "noclip" + Guid.NewGuid().ToString("N")[..6];
        var created = await admin.PostAsJsonAsync("/api/v1/templates",
            new { name = template, display_name = "No copying out", command = "xterm", clipboard_to_browser = false });
        var body = await created.AssertJsonAsync<TemplateBody>(HttpStatusCode.Created);
        Assert.False(body.ClipboardToBrowser);
        Assert.True(body.ClipboardToSession);

        var (username, id) = await NewUserWithRunningSessionAsync("dlp", template);
        var page = await OpenViewerAsync(username, id, ClipboardPermissions);
        await page.EvaluateAsync("text => navigator.clipboard.writeText(text)", "before");

        // The VNC server enforces it, and nothing in the session can turn it back on (Xvnc lets clients change only
        // the desktop's name): a program asks Xvnc to send its clipboard again, and Xvnc still says no.
        await fixture.RunInSessionDisplayAsync(id, "vncconfig", ["-set", "SendCutText=1"], TimeSpan.FromSeconds(10));
        var setting = await fixture.RunInSessionDisplayAsync(id, "vncconfig", ["-get", "SendCutText"], TimeSpan.FromSeconds(10));
        Assert.Equal("0", setting.StandardOutput.Trim());

        await SetSessionClipboardAsync(id, "secret from the session");
        // xclip takes the selection in the background: once the session's clipboard reads back the text, it was copied.
        await Eventually.TrueAsync(async () => await SessionClipboardAsync(id) == "secret from the session", FollowTimeout, "the session's clipboard to hold the copied text");
        // A barrier: RFB messages arrive in order, so once the desktop's new size (asked for after the copy) has reached
        // the viewer, the copied text would have reached it before (as it does with the default template, above).
        await page.SetViewportSizeAsync(1000, 700);
        await WaitForDesktopSizeAsync(page, id, await ScreenSizeAsync(page), "the resize after the copy");

        Assert.Equal("before", await BrowserClipboardAsync(page));
        await Assertions.Expect(page.GetByLabel("Clipboard text")).ToHaveValueAsync("");

        // The other direction still works for this template.
        await page.Locator("#viewer-screen canvas").FocusAsync();
        await page.Keyboard.PressAsync("Control+V");
        await Eventually.TrueAsync(async () => await SessionClipboardAsync(id) == "before", FollowTimeout, "the session's clipboard to hold the browser's text");
        await page.Context.CloseAsync();
    }

    private async Task<(string Username, string Id)> NewUserWithRunningSessionAsync(string prefix, string template = "xterm")
    {
        var username = await fixture.NewUserAsync(prefix);
        using var api = await fixture.Api.ClientForAsync(username, WebFixture.UserPassword);
        var id = (await api.LaunchAsync(template)).Id;
        await api.WaitForStateAsync(id, SessionState.Running);
        return (username, id);
    }

    private async Task<IPage> OpenViewerAsync(string username, string id, params string[] permissions)
    {
        var page = await fixture.NewPageAsync(permissions);
        page.Console += (_, message) => output.WriteLine($"console {message.Type}: {message.Text}");
        page.PageError += (_, error) => output.WriteLine($"page error: {error}");
        await WebFixture.LogInAsync(page, username, WebFixture.UserPassword);
        await page.GotoAsync($"sessions/{id}/view");
        await Assertions.Expect(page.Locator("#viewer-status")).ToHaveTextAsync("Connected");
        // The desktop has taken the viewer's size: the connection is fully set up.
        await WaitForDesktopSizeAsync(page, id, await ScreenSizeAsync(page), "the viewer's size");
        return page;
    }

    /// <summary>Waits until the framebuffer noVNC draws and the session's X screen both have <paramref name="size"/>.</summary>
    private async Task WaitForDesktopSizeAsync(IPage page, string id, (int Width, int Height) size, string what)
    {
        var elapsed = Stopwatch.StartNew();
        (int, int)? canvas = null, screen = null;
        try
        {
            await Eventually.TrueAsync(async () => (canvas = await CanvasSizeAsync(page)) == size && (screen = await XScreenSizeAsync(id)) == size,
                FollowTimeout, $"the desktop to be {size.Width}x{size.Height} after {what}");
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException($"{e.Message} noVNC's framebuffer: {canvas}, the X screen: {screen}.", e);
        }

        output.WriteLine($"{what}: {size.Width}x{size.Height} in {elapsed.ElapsedMilliseconds} ms");
    }

    /// <summary>The viewer's screen area, whole pixels, as noVNC asks the session for it.</summary>
    private static async Task<(int Width, int Height)> ScreenSizeAsync(IPage page)
    {
        var size = await page.Locator("#viewer-screen").EvaluateAsync<int[]>("e => { const r = e.getBoundingClientRect(); return [Math.floor(r.width), Math.floor(r.height)]; }");
        return (size[0], size[1]);
    }

    /// <summary>The framebuffer size noVNC draws: its canvas's own size (not its CSS size).</summary>
    private static async Task<(int Width, int Height)> CanvasSizeAsync(IPage page)
    {
        var size = await page.Locator("#viewer-screen canvas").EvaluateAsync<int[]>("c => [c.width, c.height]");
        return (size[0], size[1]);
    }

    private async Task<(int Width, int Height)?> XScreenSizeAsync(string id)
    {
        var info = await fixture.RunInSessionDisplayAsync(id, "xdpyinfo", []);
        return DimensionsPattern().Match(info.StandardOutput) is { Success: true } m
            ? (int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), int.Parse(m.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture))
            : null;
    }

    /// <summary>Makes <paramref name="text"/> the session's CLIPBOARD selection, as a program in it copying would.</summary>
    private async Task SetSessionClipboardAsync(string id, string text)
    {
        // xclip stays in the background to serve the selection; its output goes nowhere, so this returns at once.
        var result = await fixture.RunInSessionDisplayAsync(id, "bash", ["-c", "printf %s \"$1\" | xclip -selection clipboard -i >/dev/null 2>&1", "set-clipboard", text]);
        Assert.Equal(0, result.ExitCode);
    }

    /// <summary>The session's CLIPBOARD selection as UTF-8 text, or null while nothing serves it.</summary>
    private async Task<string?> SessionClipboardAsync(string id)
    {
        try
        {
            var result = await fixture.RunInSessionDisplayAsync(id, "xclip", ["-o", "-selection", "clipboard"], TimeSpan.FromSeconds(5));
            return result.ExitCode == 0 ? result.StandardOutput : null;
        }
        catch (TimeoutException)
        {
            return null;
        }
    }

    private static Task<string> BrowserClipboardAsync(IPage page) => page.EvaluateAsync<string>("() => navigator.clipboard.readText()");

    [GeneratedRegex(@"dimensions:\s+(\d+)x(\d+) pixels")]
    private static partial Regex DimensionsPattern();
}
