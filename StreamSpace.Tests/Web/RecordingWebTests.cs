using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using Microsoft.Playwright;
using StreamSpace.Contracts;
using StreamSpace.Contracts.Api;
using StreamSpace.Tests.Api.Features.Sessions;
using StreamSpace.Tests.Infrastructure;
using Xunit.Abstractions;

namespace StreamSpace.Tests.Web;

/// <summary>
/// Recording end to end: a real local agent records a real Xvnc session of a recorded template while the test types
/// into it; the catalog lists it, the admin page's player replays it in chromium (read back by OCR of its canvas), and
/// its export is a video of the same length.
/// </summary>
public sealed class RecordingWebTests(WebFixture fixture, ITestOutputHelper output) : IClassFixture<WebFixture>
{
    private const string Typed = "PLAYBACK";

    [Fact]
    public async Task A_recorded_session_is_listed_replays_what_was_typed_and_exports_a_video_of_its_length()
    {
        using var admin = await fixture.Api.AdminClientAsync();
        // A large font, so the typed text survives OCR of the replayed canvas.
        var template = "recterm" + Guid.NewGuid().ToString("N")[..6];
        (await admin.PostAsJsonAsync("/api/v1/templates",
            new { name = template, display_name = "Recorded terminal", command = "xterm -fa Monospace -fs 18", record = true })).EnsureSuccessStatusCode();
        var username = await fixture.NewUserAsync("recorded");
        using var owner = await fixture.Api.ClientForAsync(username, WebFixture.UserPassword);
        var launched = DateTimeOffset.UtcNow;
        var id = (await owner.LaunchAsync(template)).Id;
        Assert.True((await owner.WaitForStateAsync(id, SessionState.Running)).Recording);

        // The owner is told, on the viewer's toolbar.
        var viewer = await fixture.NewPageAsync();
        await WebFixture.LogInAsync(viewer, username, WebFixture.UserPassword);
        await viewer.GotoAsync($"sessions/{id}/view");
        await Assertions.Expect(viewer.Locator("#viewer-recording")).ToBeVisibleAsync();
        await viewer.Context.CloseAsync();

        var recording = await Eventually.ValueAsync(async () =>
            (await (await admin.GetAsync($"{RecordingRoutes.List}?session={id}")).AssertJsonAsync<List<RecordingResponse>>(HttpStatusCode.OK)).SingleOrDefault(),
            TimeSpan.FromSeconds(30), "the recording to be listed");
        Assert.True(recording.Recording);

        // The test types a command into the session's xterm (focused by openbox), which leaves a file once it ran.
        var home = fixture.Agent.HomeOf(await owner.UserIdAsync());
        await Eventually.TrueAsync(async () =>
        {
            await fixture.RunInSessionDisplayAsync(id, "xdotool", ["search", "--sync", "--class", "XTerm", "windowactivate", "--sync"], TimeSpan.FromSeconds(10));
            await fixture.RunInSessionDisplayAsync(id, "xdotool", ["type", "--delay", "30", $"echo {Typed}; touch ~/typed\n"], TimeSpan.FromSeconds(20));
            return File.Exists(Path.Combine(home, "typed"));
        }, TimeSpan.FromSeconds(40), "the typed command to run");

        // The recorder asks for updates every 50 ms and reports every few seconds: a report made after the command ran
        // covers the screen it left.
        var typedAt = DateTimeOffset.UtcNow;
        await Eventually.TrueAsync(async () =>
        {
            var now = await (await admin.GetAsync(RecordingRoutes.One(recording.Id))).AssertJsonAsync<RecordingResponse>(HttpStatusCode.OK);
            return now.StartedAt.AddMilliseconds(now.DurationMs) > typedAt.AddSeconds(1);
        }, TimeSpan.FromSeconds(30), "a report after the command ran");

        (await owner.DeleteAsync($"/api/v1/sessions/{id}")).EnsureSuccessStatusCode();
        var stoppedBy = DateTimeOffset.UtcNow;
        var ended = await Eventually.ValueAsync(async () =>
        {
            var now = await (await admin.GetAsync(RecordingRoutes.One(recording.Id))).AssertJsonAsync<RecordingResponse>(HttpStatusCode.OK);
            return now.Recording ? null : now;
        }, TimeSpan.FromSeconds(30), "the recording to end with the session");
        output.WriteLine($"recording {ended.Id}: {ended.DurationMs} ms, {ended.Bytes} bytes");
        // Plausible: it covers the typing, and no more than the session's life.
        Assert.InRange(ended.DurationMs, (long)(typedAt - ended.StartedAt).TotalMilliseconds, (long)(DateTimeOffset.UtcNow - launched).TotalMilliseconds + 2_000);
        Assert.True(ended.EndedAt >= ended.StartedAt && ended.EndedAt <= stoppedBy.AddSeconds(30));
        Assert.True(ended.Bytes > 0);

        await PlayAndReadAsync(ended);
        await ExportAndProbeAsync(admin, ended);
    }

    /// <summary>Plays the recording on the admin page at 4× to its end, and reads the typed text off the player's canvas.</summary>
    private async Task PlayAndReadAsync(RecordingResponse recording)
    {
        var page = await fixture.NewPageAsync();
        page.Console += (_, message) => output.WriteLine($"console {message.Type}: {message.Text}");
        page.PageError += (_, error) => output.WriteLine($"page error: {error}");
        await WebFixture.LogInAsync(page, ApiFactory.AdminUsername, ApiFactory.AdminPassword);
        await page.GotoAsync("admin/recordings");
        var row = page.Locator($"tr[data-recording-id='{recording.Id}']");
        await Assertions.Expect(row).ToContainTextAsync(recording.SessionId);
        await row.GetByRole(AriaRole.Link, new() { Name = $"Play the recording of {recording.SessionId}" }).ClickAsync();
        await page.WaitForURLAsync($"**/admin/recordings/{recording.Id}/play");

        var player = page.Locator("#player");
        await page.Locator("#player-speed").SelectOptionAsync("4");
        await Assertions.Expect(player).ToHaveAttributeAsync("data-state", "ended",
            new() { Timeout = (float)(recording.DurationMs / 4.0 + 30_000) });
        await Assertions.Expect(page.Locator("#player-time")).ToContainTextAsync(" / ");
        var text = await CanvasTextAsync(page);
        output.WriteLine($"OCR of the replayed canvas:\n{text}");
        Assert.Contains(Typed, text, StringComparison.Ordinal);
        await WebFixture.ScreenshotAsync(page, "admin-recording-player.png");

        // Seeking back to the start shows the desktop before the typing (a fresh noVNC fed from the start), and
        // forward to the end shows it again.
        await SeekAsync(page, 0);
        Assert.DoesNotContain(Typed, await CanvasTextAsync(page), StringComparison.Ordinal);
        await SeekAsync(page, recording.DurationMs);
        Assert.Contains(Typed, await CanvasTextAsync(page), StringComparison.Ordinal);
        await page.Context.CloseAsync();
    }

    /// <summary>Moves the seek bar as a user dragging it would, and waits until the player is there.</summary>
    private static async Task SeekAsync(IPage page, long milliseconds)
    {
        await page.Locator("#player-seek").EvaluateAsync("(bar, at) => { bar.value = String(at); bar.dispatchEvent(new Event('input')); }", milliseconds);
        await Assertions.Expect(page.Locator("#player")).ToHaveAttributeAsync("data-position", milliseconds.ToString(CultureInfo.InvariantCulture));
    }

    /// <summary>The player's canvas as a PNG, read by Debian's tesseract.</summary>
    private static async Task<string> CanvasTextAsync(IPage page)
    {
        var dataUrl = await page.Locator("#player-screen canvas").EvaluateAsync<string>("c => c.toDataURL('image/png')");
        var png = Path.Combine(Path.GetTempPath(), $"player-{Guid.NewGuid():N}.png");
        await File.WriteAllBytesAsync(png, Convert.FromBase64String(dataUrl[(dataUrl.IndexOf(',') + 1)..]));
        try
        {
            var result = await ProcessRunner.RunAsync("tesseract", [png, "stdout"], new Dictionary<string, string>(), TimeSpan.FromSeconds(60));
            Assert.True(result.ExitCode == 0, result.StandardError);
            return result.StandardOutput;
        }
        finally
        {
            File.Delete(png);
        }
    }

    /// <summary>Exports the recording and checks ffprobe reads a video of its duration, to the second.</summary>
    private static async Task ExportAndProbeAsync(HttpClient admin, RecordingResponse recording)
    {
        var response = await admin.GetAsync(RecordingRoutes.Export(recording.Id));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("video/mp4", response.Content.Headers.ContentType!.MediaType);
        var mp4 = Path.Combine(Path.GetTempPath(), $"export-{Guid.NewGuid():N}.mp4");
        await File.WriteAllBytesAsync(mp4, await response.Content.ReadAsByteArrayAsync());
        try
        {
            var probe = await ProcessRunner.RunAsync("ffprobe",
                ["-v", "error", "-show_entries", "format=duration", "-of", "default=noprint_wrappers=1:nokey=1", mp4],
                new Dictionary<string, string>(), TimeSpan.FromSeconds(60));
            Assert.True(probe.ExitCode == 0, probe.StandardError);
            var seconds = double.Parse(probe.StandardOutput.Trim(), CultureInfo.InvariantCulture);
            Assert.InRange(seconds, recording.DurationMs / 1000.0 - 1, recording.DurationMs / 1000.0 + 1);
        }
        finally
        {
            File.Delete(mp4);
        }
    }
}
