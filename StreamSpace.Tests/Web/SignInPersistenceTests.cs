using System.Net;
using Microsoft.Playwright;

namespace StreamSpace.Tests.Web;

/// <summary>
/// The web's sign-in outlives the web process (Data Protection keys in PostgreSQL) and ends for good on "Log out".
/// Its own fixture, since it restarts the web process.
/// </summary>
public sealed class SignInPersistenceTests(WebFixture fixture) : IClassFixture<WebFixture>
{
    [Fact]
    public async Task A_signed_in_user_stays_signed_in_across_a_restart_of_the_web_process()
    {
        var username = await fixture.NewUserAsync("restart");
        var page = await fixture.NewPageAsync();
        await WebFixture.LogInAsync(page, username, WebFixture.UserPassword);

        await fixture.RestartWebAsync();
        await using (var connection = new Npgsql.NpgsqlConnection(fixture.Api.ConnectionString))
        {
            await connection.OpenAsync();
            await using var count = new Npgsql.NpgsqlCommand("SELECT count(*) FROM data_protection_keys", connection);
            Assert.True((long)(await count.ExecuteScalarAsync())! >= 1, "the web's keys are in PostgreSQL");
        }

        await page.GotoAsync("");
        await page.GetByRole(AriaRole.Heading, new() { Name = "Catalog" }).WaitForAsync();
        Assert.DoesNotContain("/login", page.Url, StringComparison.Ordinal);
        var me = await page.APIRequest.GetAsync("api/v1/auth/me");
        Assert.Equal((int)HttpStatusCode.OK, me.Status);
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task After_log_out_a_copy_of_the_old_cookie_no_longer_works()
    {
        var username = await fixture.NewUserAsync("logout");
        var page = await fixture.NewPageAsync();
        await WebFixture.LogInAsync(page, username, WebFixture.UserPassword);
        var cookies = await page.Context.CookiesAsync();

        // A copy of the cookie, as a thief would hold it, works while the user is signed in.
        var copy = await fixture.NewPageAsync();
        await copy.Context.AddCookiesAsync(cookies.Select(c => new Microsoft.Playwright.Cookie { Name = c.Name, Value = c.Value, Domain = c.Domain, Path = c.Path }));
        Assert.Equal((int)HttpStatusCode.OK, (await copy.APIRequest.GetAsync("api/v1/auth/me")).Status);

        await page.GetByRole(AriaRole.Button, new() { Name = "Log out" }).ClickAsync();
        await page.WaitForURLAsync("**/login**");

        Assert.Equal((int)HttpStatusCode.Unauthorized, (await copy.APIRequest.GetAsync("api/v1/auth/me")).Status);
        await page.Context.CloseAsync();
        await copy.Context.CloseAsync();
    }

    [Fact]
    public async Task The_auth_cookie_is_secure_when_public_url_is_https_and_not_over_plain_http_otherwise()
    {
        var username = await fixture.NewUserAsync("cookie");
        Assert.False(await AuthCookieIsSecureAsync(username), "the auth cookie over plain http without an https PUBLIC_URL");

        await fixture.RestartWebAsync(new Dictionary<string, string> { ["PUBLIC_URL"] = "https://streamspace.example.com" });
        try
        {
            Assert.True(await AuthCookieIsSecureAsync(username), "the auth cookie under an https PUBLIC_URL");
        }
        finally
        {
            await fixture.RestartWebAsync();
        }
    }

    private async Task<bool> AuthCookieIsSecureAsync(string username)
    {
        // Chromium keeps Secure cookies from http://127.0.0.1 (loopback counts as a secure context), so the flag shows.
        var page = await fixture.NewPageAsync();
        await WebFixture.LogInAsync(page, username, WebFixture.UserPassword);
        var cookie = Assert.Single(await page.Context.CookiesAsync(), c => c.Name == "streamspace_auth");
        await page.Context.CloseAsync();
        return cookie.Secure;
    }
}
