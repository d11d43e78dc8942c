using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using Microsoft.Playwright;
using StreamSpace.Contracts;
using StreamSpace.Contracts.Api;
using StreamSpace.Tests.Api.Features.Sessions;
using StreamSpace.Tests.Api.Features.Tokens;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Web;

/// <summary>Personal API tokens and the usage report as users meet them: through the web UI, in chromium.</summary>
public sealed class ApiTokenWebTests(WebFixture fixture) : IClassFixture<WebFixture>
{
    [Fact]
    public async Task An_ssp_token_sent_to_the_web_gets_nothing_while_it_works_on_the_api()
    {
        var username = await fixture.NewUserAsync("tokenweb");
        using var user = await fixture.Api.ClientForAsync(username, WebFixture.UserPassword);
        var token = (await user.CreateTokenAsync(ApiTokenScopes.Read, ApiTokenScopes.Sessions)).Token;
        using (var api = fixture.Api.TokenClient(token))
        {
            await (await api.GetAsync("/api/v1/auth/me")).AssertJsonAsync(HttpStatusCode.OK);
        }

        using var web = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false, UseCookies = false }) { BaseAddress = fixture.WebAddress };
        web.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);

        // The web's /api forwards the browser's cookie only: the bearer is dropped, so the API sees no one.
        await (await web.GetAsync("api/v1/auth/me")).AssertProblemAsync(HttpStatusCode.Unauthorized);
        await (await web.GetAsync("api/v1/sessions")).AssertProblemAsync(HttpStatusCode.Unauthorized);
        using var launch = new HttpRequestMessage(HttpMethod.Post, "api/v1/sessions") { Content = JsonContent.Create(new CreateSessionRequest("xterm"), options: ApiJson.Options) };
        launch.Headers.Add("X-StreamSpace-Request", "1");
        await (await web.SendAsync(launch)).AssertProblemAsync(HttpStatusCode.Unauthorized);

        // The pages sign in with the login form's cookie only: a bearer is sent to the login page.
        foreach (var path in new[] { "", "sessions", "tokens" })
        {
            var page = await web.GetAsync(path);
            Assert.True(page.StatusCode == HttpStatusCode.Redirect, $"/{path}: {(int)page.StatusCode}");
            Assert.Contains("login", page.Headers.Location?.ToString());
        }
    }

    [Fact]
    public async Task A_user_creates_a_token_copies_it_once_uses_it_and_revokes_it()
    {
        var username = await fixture.NewUserAsync("tokenpage");
        var page = await fixture.NewPageAsync("clipboard-read", "clipboard-write");
        await WebFixture.LogInAsync(page, username, WebFixture.UserPassword);
        await page.GetByRole(AriaRole.Link, new() { Name = "API tokens" }).ClickAsync();
        await Assertions.Expect(page.GetByText("You have no API tokens.")).ToBeVisibleAsync();

        await page.GetByLabel("Name").FillAsync("nightly backup");
        await page.GetByLabel("Expires in").SelectOptionAsync("90");
        await page.GetByLabel("Scope").SelectOptionAsync(ApiTokenScopes.Sessions);
        // A plain user is offered no admin scope.
        await Assertions.Expect(page.Locator("#token-scope option[value=admin]")).ToHaveCountAsync(0);
        await page.GetByRole(AriaRole.Button, new() { Name = "Create token" }).ClickAsync();

        var secret = page.GetByLabel("The new token");
        await Assertions.Expect(secret).ToHaveValueAsync(new System.Text.RegularExpressions.Regex("^ssp_[A-Za-z0-9_-]{43}$"));
        var token = await secret.InputValueAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Copy" }).ClickAsync();
        await Assertions.Expect(page.GetByText("Copied.")).ToBeVisibleAsync();
        Assert.Equal(token, await page.EvaluateAsync<string>("navigator.clipboard.readText()"));

        var row = page.Locator("tr[data-token='nightly backup']");
        await Assertions.Expect(row).ToContainTextAsync("read, sessions");
        await Assertions.Expect(row.Locator(".token-last-used")).ToHaveTextAsync("never");
        await WebFixture.ScreenshotAsync(page, "api-tokens.png");

        using (var script = fixture.Api.TokenClient(token))
        {
            var session = await script.LaunchAsync();
            await script.WaitForStateAsync(session.Id, SessionState.Running);
            Assert.Equal(HttpStatusCode.Accepted, (await script.DeleteAsync($"/api/v1/sessions/{session.Id}")).StatusCode);
        }

        // Shown once: a reload lists the token by its prefix, with its use, and never the secret again.
        await page.ReloadAsync();
        await Assertions.Expect(row.Locator(".token-last-used")).Not.ToHaveTextAsync("never");
        await Assertions.Expect(page.GetByLabel("The new token")).ToHaveCountAsync(0);
        Assert.DoesNotContain(token, await page.ContentAsync());
        await Assertions.Expect(row).ToContainTextAsync(token[..10]);

        await page.GetByRole(AriaRole.Button, new() { Name = "Revoke nightly backup" }).ClickAsync();
        await Assertions.Expect(row.Locator(".token-state")).ToHaveTextAsync("revoked");
        using (var script = fixture.Api.TokenClient(token))
        {
            await (await script.GetAsync("/api/v1/sessions")).AssertProblemAsync(HttpStatusCode.Unauthorized);
        }

        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task An_admin_sees_session_hours_per_user_and_exports_them_as_csv()
    {
        var username = await fixture.NewUserAsync("usage");
        using (var user = await fixture.Api.ClientForAsync(username, WebFixture.UserPassword))
        {
            var session = await user.LaunchAsync();
            await user.WaitForStateAsync(session.Id, SessionState.Running);
            Assert.Equal(HttpStatusCode.Accepted, (await user.DeleteAsync($"/api/v1/sessions/{session.Id}")).StatusCode);
            await user.WaitForStateAsync(session.Id, SessionState.Stopped);
        }

        var page = await fixture.NewPageAsync();
        await WebFixture.LogInAsync(page, ApiFactory.AdminUsername, ApiFactory.AdminPassword);
        await page.GetByRole(AriaRole.Link, new() { Name = "Usage" }).ClickAsync();
        var row = page.Locator($"tr[data-key='{username}']");
        await Assertions.Expect(row.Locator("td").Nth(2)).ToHaveTextAsync("1");
        await WebFixture.ScreenshotAsync(page, "admin-usage.png");

        var download = await page.RunAndWaitForDownloadAsync(() => page.GetByRole(AriaRole.Link, new() { Name = "Export CSV" }).ClickAsync());
        var csv = await File.ReadAllTextAsync(await download.PathAsync());
        Assert.StartsWith("user,session_hours,sessions\r\n", csv);
        Assert.Matches($"\r\n{username},[0-9.]+,1\r\n", csv);

        await page.GetByLabel("Group by").SelectOptionAsync("template");
        await page.GetByRole(AriaRole.Button, new() { Name = "Show" }).ClickAsync();
        await Assertions.Expect(page.Locator("tr[data-key='xterm']")).ToBeVisibleAsync();
        await page.Context.CloseAsync();
    }
}
