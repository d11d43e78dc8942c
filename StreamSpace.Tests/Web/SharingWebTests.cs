using System.Net.Http.Json;
using Microsoft.Playwright;
using StreamSpace.Contracts;
using StreamSpace.Contracts.Api;
using StreamSpace.Tests.Api.Features.Sessions;
using StreamSpace.Tests.Infrastructure;
using Xunit.Abstractions;

namespace StreamSpace.Tests.Web;

/// <summary>Sharing in Debian's chromium: the owner's Share dialog, and a colleague's page for the link, against a real Xvnc session.</summary>
public sealed class SharingWebTests(WebFixture fixture, ITestOutputHelper output) : IClassFixture<WebFixture>
{
    [Fact]
    public async Task The_owner_shares_from_the_viewer_and_a_colleague_signs_in_through_the_link_watches_view_only_and_is_told_when_it_ends()
    {
        var ownerName = await fixture.NewUserAsync("owner");
        var colleagueName = await fixture.NewUserAsync("colleague");
        using var api = await fixture.Api.ClientForAsync(ownerName, WebFixture.UserPassword);
        var id = (await api.LaunchAsync()).Id;
        await api.WaitForStateAsync(id, SessionState.Running);

        var owner = await fixture.NewPageAsync();
        owner.PageError += (_, error) => output.WriteLine($"owner page error: {error}");
        await WebFixture.LogInAsync(owner, ownerName, WebFixture.UserPassword);
        await owner.GotoAsync($"sessions/{id}/view");
        await Assertions.Expect(owner.Locator("#viewer-status")).ToHaveTextAsync("Connected");
        await owner.GetByRole(AriaRole.Button, new() { Name = "Share" }).ClickAsync();
        await Assertions.Expect(owner.Locator("#share-mode")).ToHaveValueAsync(ShareModes.ViewOnly);
        await Assertions.Expect(owner.Locator("#share-expiry")).ToHaveValueAsync("60");
        await owner.GetByRole(AriaRole.Button, new() { Name = "Create link" }).ClickAsync();
        await Assertions.Expect(owner.Locator("#share-link")).ToHaveValueAsync(new System.Text.RegularExpressions.Regex("/shares/[A-Za-z0-9_-]{40,}$"));
        var link = await owner.Locator("#share-link").InputValueAsync();
        await Assertions.Expect(owner.Locator("#share-active li")).ToHaveCountAsync(1);

        // The colleague, signed out, opens the link: the login page first, then straight back to the share.
        var colleague = await fixture.NewPageAsync();
        colleague.PageError += (_, error) => output.WriteLine($"colleague page error: {error}");
        await colleague.GotoAsync(link);
        await colleague.WaitForURLAsync("**/login?**", new() { WaitUntil = WaitUntilState.Commit });
        await colleague.GetByLabel("Username").FillAsync(colleagueName);
        await colleague.GetByLabel("Password").FillAsync(WebFixture.UserPassword);
        await colleague.GetByRole(AriaRole.Button, new() { Name = "Log in" }).ClickAsync();
        await colleague.WaitForURLAsync("**/shares/**", new() { WaitUntil = WaitUntilState.Commit });
        await Assertions.Expect(colleague.Locator("#viewer-title")).ToHaveTextAsync($"{ownerName} is sharing Terminal desktop with you (view-only)");
        await Assertions.Expect(colleague.Locator("#viewer-status")).ToHaveTextAsync("Connected");
        // A view-only viewer gets no Files, no Share, no clipboard and no resizing.
        foreach (var absent in new[] { "#viewer-files-toggle", "#viewer-share-toggle", "#viewer-clipboard-toggle", "#viewer-scale" })
        {
            await Assertions.Expect(colleague.Locator(absent)).ToHaveCountAsync(0);
        }

        // The owner sees the colleague watching, through the share, view-only.
        var watching = owner.Locator($"#share-viewers li[data-username='{colleagueName}']");
        await Assertions.Expect(watching).ToContainTextAsync("through a share, view-only", new() { Timeout = 15_000 });
        await WebFixture.ScreenshotAsync(owner, "viewer-share.png");

        // The owner ends the share: the colleague's viewer closes with a page that says so, and the link stays dead.
        await owner.Locator("#share-active li").GetByRole(AriaRole.Button, new() { Name = "End" }).ClickAsync();
        await Assertions.Expect(colleague.Locator("#share-refused h2")).ToHaveTextAsync("This share has ended.", new() { Timeout = 10_000 });
        await colleague.ReloadAsync();
        await Assertions.Expect(colleague.Locator("#share-refused h1")).ToHaveTextAsync("This share has ended");
        await Assertions.Expect(colleague.Locator("#viewer-screen")).ToHaveCountAsync(0);
        await owner.Context.CloseAsync();
        await colleague.Context.CloseAsync();
    }

    [Fact]
    public async Task An_expired_link_and_a_link_for_other_users_get_a_page_that_says_so_and_no_viewer()
    {
        var ownerName = await fixture.NewUserAsync("owner");
        var invitedName = await fixture.NewUserAsync("invited");
        var strangerName = await fixture.NewUserAsync("stranger");
        using var api = await fixture.Api.ClientForAsync(ownerName, WebFixture.UserPassword);
        var id = (await api.LaunchAsync()).Id;
        await api.WaitForStateAsync(id, SessionState.Running);
        var forInvited = await (await api.PostAsJsonAsync($"/api/v1/sessions/{id}/shares", new CreateShareRequest(Users: [invitedName]), ApiJson.Options))
            .AssertJsonAsync<ShareResponse>(System.Net.HttpStatusCode.Created);
        var expiring = await (await api.PostAsJsonAsync($"/api/v1/sessions/{id}/shares", new CreateShareRequest(ShareModes.Interactive), ApiJson.Options))
            .AssertJsonAsync<ShareResponse>(System.Net.HttpStatusCode.Created);
        await using (var connection = new Npgsql.NpgsqlConnection(fixture.Api.ConnectionString))
        {
            await Dapper.SqlMapper.ExecuteAsync(connection, "UPDATE session_shares SET expires_at = now() WHERE id = @id", new { id = expiring.Id });
        }

        var stranger = await fixture.NewPageAsync();
        await WebFixture.LogInAsync(stranger, strangerName, WebFixture.UserPassword);
        await stranger.GotoAsync(forInvited.Url.TrimStart('/'));
        await Assertions.Expect(stranger.Locator("#share-refused h1")).ToHaveTextAsync("This session is not shared with you");
        await Assertions.Expect(stranger.Locator("#viewer-screen")).ToHaveCountAsync(0);
        await stranger.GotoAsync(expiring.Url.TrimStart('/'));
        await Assertions.Expect(stranger.Locator("#share-refused h1")).ToHaveTextAsync("This share has expired");
        await Assertions.Expect(stranger.Locator("#viewer-screen")).ToHaveCountAsync(0);
        await stranger.Context.CloseAsync();
    }
}
