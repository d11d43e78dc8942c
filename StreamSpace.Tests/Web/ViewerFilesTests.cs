using System.Security.Cryptography;
using Microsoft.Playwright;
using StreamSpace.Contracts;
using StreamSpace.Tests.Api.Features.Sessions;
using StreamSpace.Tests.Infrastructure;
using Xunit.Abstractions;

namespace StreamSpace.Tests.Web;

/// <summary>The viewer's Files panel in Debian's chromium, through the web's /api proxy, against a real Xvnc session on a local agent.</summary>
public sealed class ViewerFilesTests(WebFixture fixture, ITestOutputHelper output) : IClassFixture<WebFixture>
{
    [Fact]
    public async Task A_100_MiB_file_chosen_in_the_Files_panel_is_uploaded_with_progress_and_a_file_of_Downloads_downloads_from_it()
    {
        var username = await fixture.NewUserAsync("files");
        using var api = await fixture.Api.ClientForAsync(username, WebFixture.UserPassword);
        var userId = await api.UserIdAsync();
        var id = (await api.LaunchAsync()).Id;
        await api.WaitForStateAsync(id, SessionState.Running);
        var home = fixture.Agent.HomeOf(userId);

        // A 100 MiB file on disk, written from a generated stream (never whole in memory), for the browser to pick.
        var folder = Directory.CreateTempSubdirectory("streamspace-upload-").FullName;
        var picked = Path.Combine(folder, "big upload.bin");
        byte[] expectedHash;
        await using (var source = new GeneratedStream(100L << 20, seed: 42))
        {
            await using (var target = File.Create(picked))
            {
                await source.CopyToAsync(target);
            }

            expectedHash = source.Hash();
        }

        var page = await fixture.NewPageAsync();
        page.PageError += (_, error) => output.WriteLine($"page error: {error}");
        await WebFixture.LogInAsync(page, username, WebFixture.UserPassword);
        await page.GotoAsync($"sessions/{id}/view");
        await Assertions.Expect(page.Locator("#viewer-status")).ToHaveTextAsync("Connected");

        await page.GetByRole(AriaRole.Button, new() { Name = "Files" }).ClickAsync();
        await page.Locator("#viewer-files-input").SetInputFilesAsync(picked);
        var item = page.Locator("#viewer-uploads li[data-name='big upload.bin']");
        await Assertions.Expect(item).ToHaveAttributeAsync("data-state", "done", new() { Timeout = 120_000 });
        await Assertions.Expect(item.Locator(".upload-state")).ToHaveTextAsync("Done");
        await using (var stored = File.OpenRead(Path.Combine(home, "Uploads", "big upload.bin")))
        {
            Assert.Equal(Convert.ToHexString(expectedHash), Convert.ToHexString(await SHA256.HashDataAsync(stored)));
        }

        // A name the API refuses fails on its own line with the server's reason; the finished upload stays done.
        var longName = new string('n', 252) + ".txt";
        await page.Locator("#viewer-files-input").SetInputFilesAsync(new FilePayload { Name = longName, MimeType = "text/plain", Buffer = "x"u8.ToArray() });
        var refused = page.Locator($"#viewer-uploads li[data-name='{longName}']");
        await Assertions.Expect(refused).ToHaveAttributeAsync("data-state", "failed");
        await Assertions.Expect(refused.Locator(".upload-state")).ToHaveTextAsync("Failed: The file name is longer than 255 bytes.");
        await Assertions.Expect(item).ToHaveAttributeAsync("data-state", "done");

        // The session saves a file in ~/Downloads; the panel lists it after a refresh, and its link downloads it.
        await SessionAccountShell.RunAsync(home, userId, "mkdir -p \"$HOME/Downloads\" && head -c 1048577 /dev/urandom >\"$HOME/Downloads/notes.dat\"");
        var expected = await File.ReadAllBytesAsync(Path.Combine(home, "Downloads", "notes.dat"));
        await page.GetByRole(AriaRole.Button, new() { Name = "Refresh" }).ClickAsync();
        var link = page.Locator("#viewer-downloads a", new() { HasText = "notes.dat" });
        await Assertions.Expect(link).ToBeVisibleAsync();
        await Assertions.Expect(page.Locator("#viewer-downloads li")).ToContainTextAsync("1.0 MiB");
        await WebFixture.ScreenshotAsync(page, "viewer-files.png");
        var download = await page.RunAndWaitForDownloadAsync(() => link.ClickAsync());
        Assert.Equal("notes.dat", download.SuggestedFilename);
        Assert.Equal(expected, await File.ReadAllBytesAsync(await download.PathAsync()));

        await page.Context.CloseAsync();
        Directory.Delete(folder, recursive: true);
    }
}
