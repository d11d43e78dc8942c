using System.Net;
using System.Net.Http.Json;
using Microsoft.Playwright;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Web.Oidc;

/// <summary>LOCAL_LOGIN=false, so the provider is the way in, and OIDC_END_SESSION=true.</summary>
public sealed class OidcOnlySignInTests(OidcOnlyFixture fixture) : IClassFixture<OidcOnlyFixture>
{
    private OidcStack Stack => fixture.Stack;

    [Fact]
    public async Task The_login_page_hides_the_password_form_and_the_bootstrap_admin_still_signs_in_with_a_password()
    {
        var page = await Stack.Web.NewPageAsync();
        await page.GotoAsync("login");
        await page.GetByRole(AriaRole.Link, new() { Name = $"Sign in with {OidcStack.DisplayName}" }).WaitForAsync();
        Assert.Equal(0, await page.GetByLabel("Password").CountAsync());

        await page.GetByRole(AriaRole.Link, new() { Name = "Administrator sign-in with a password" }).ClickAsync();
        await page.GetByLabel("Username").FillAsync(ApiFactory.AdminUsername);
        await page.GetByLabel("Password").FillAsync(ApiFactory.AdminPassword);
        await page.GetByRole(AriaRole.Button, new() { Name = "Log in" }).ClickAsync();
        await OidcStack.WaitForCatalogAsync(page);
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task Another_local_user_cannot_sign_in_with_a_password_neither_on_the_page_nor_at_the_api()
    {
        var username = await Stack.Web.NewUserAsync("pwuser");
        var page = await Stack.Web.NewPageAsync();
        await page.GotoAsync("login?local=true");
        await page.GetByLabel("Username").FillAsync(username);
        await page.GetByLabel("Password").FillAsync(WebFixture.UserPassword);
        await page.GetByRole(AriaRole.Button, new() { Name = "Log in" }).ClickAsync();

        Assert.Contains("Password sign-in is turned off", await page.Locator("#login-error").InnerTextAsync(), StringComparison.Ordinal);
        Assert.Equal((int)HttpStatusCode.Unauthorized, (await page.APIRequest.GetAsync("api/v1/auth/me")).Status);
        using var client = Stack.Web.Api.CreateClient();
        var login = await client.PostAsJsonAsync("/api/v1/auth/login", new { username, password = WebFixture.UserPassword });
        Assert.Equal(HttpStatusCode.Forbidden, login.StatusCode);
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task Logging_out_signs_the_user_out_of_the_provider_too_with_oidc_end_session()
    {
        var username = "erin" + Guid.NewGuid().ToString("N")[..6];
        var subject = await Stack.NewAccountAsync(username);
        var page = await Stack.Web.NewPageAsync();
        await OidcStack.SignInWithProviderAsync(page, subject);
        await OidcStack.WaitForCatalogAsync(page);

        await page.GetByRole(AriaRole.Button, new() { Name = "Log out" }).ClickAsync();
        // The provider's end-session page asks, as providers do for a sign-out that another site started.
        await page.GetByRole(AriaRole.Button, new() { Name = "Yes, sign me out" }).ClickAsync();
        // Back on the login page once it shows its provider link: waiting for the page's load event instead timed out
        // on a busy machine after the redirect chain had already arrived.
        await page.WaitForURLAsync("**/login", new() { WaitUntil = WaitUntilState.Commit });
        await page.GetByRole(AriaRole.Link, new() { Name = $"Sign in with {OidcStack.DisplayName}" }).WaitForAsync();
        Assert.Equal((int)HttpStatusCode.Unauthorized, (await page.APIRequest.GetAsync("api/v1/auth/me")).Status);

        // The provider forgot this browser: signing in again needs its login form.
        await page.GetByRole(AriaRole.Link, new() { Name = $"Sign in with {OidcStack.DisplayName}" }).ClickAsync();
        await page.Locator("input[name=login]").WaitForAsync();
        await page.Context.CloseAsync();
    }
}
