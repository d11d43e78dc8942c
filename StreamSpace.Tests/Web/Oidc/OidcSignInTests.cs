using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Playwright;
using StreamSpace.Contracts.Api;

namespace StreamSpace.Tests.Web.Oidc;

/// <summary>
/// Signing in through a real OpenID provider in the browser: the web UI runs the code flow with PKCE, the API
/// validates the ID token itself and creates or updates the user from its claims.
/// </summary>
public sealed class OidcSignInTests(OidcFixture fixture) : IClassFixture<OidcFixture>
{
    private OidcStack Stack => fixture.Stack;

    [Fact]
    public async Task A_first_sign_in_creates_the_user_with_the_claims_groups_and_the_mapped_role_and_each_sign_in_applies_them_again()
    {
        var username = "alice" + Guid.NewGuid().ToString("N")[..6];
        var subject = await Stack.NewAccountAsync(username, "staff", OidcStack.AdminGroup);
        var page = await Stack.Web.NewPageAsync();
        await OidcStack.SignInWithProviderAsync(page, subject);
        await OidcStack.WaitForCatalogAsync(page);

        var me = await page.APIRequest.GetAsync("api/v1/auth/me");
        Assert.Equal((int)HttpStatusCode.OK, me.Status);
        var user = JsonSerializer.Deserialize<UserResponse>(await me.TextAsync(), ApiJson.Options)!;
        Assert.Equal(username, user.Username);
        Assert.Equal(UserRoles.Admin, user.Role);
        Assert.Equal(UserSources.Oidc, user.Source);
        Assert.Equal($"{username} Example", user.DisplayName);
        Assert.Equal($"{username}@example.com", user.Email);
        Assert.Equal(["staff", OidcStack.AdminGroup], user.ProviderGroups);
        // An admin in the web UI too: the admin pages are in the navigation.
        await page.GetByRole(AriaRole.Link, new() { Name = "Users" }).WaitForAsync();
        await page.Context.CloseAsync();

        // The provider moves the user out of the admin group: the next sign-in makes them a plain user.
        await Stack.Provider.SetAccountAsync(subject, new(username, $"{username} Example", $"{username}@example.com", ["staff", "finance"]));
        page = await Stack.Web.NewPageAsync();
        await OidcStack.SignInWithProviderAsync(page, subject);
        await OidcStack.WaitForCatalogAsync(page);
        var listed = await Stack.FindUserAsync(username);
        Assert.Equal(UserRoles.User, listed!.Role);
        Assert.Equal(["staff", "finance"], listed.ProviderGroups);
        Assert.Equal(user.Id, listed.Id);
        await page.Context.CloseAsync();

        using var admin = await Stack.Web.Api.AdminClientAsync();
        var created = await admin.GetFromJsonAsync<JsonElement>($"/api/v1/audit?action=user.created&target_id={user.Id}");
        Assert.Contains("\"source\":\"oidc\"", created.GetRawText(), StringComparison.Ordinal);
        var signedIn = await admin.GetFromJsonAsync<JsonElement>($"/api/v1/audit?action=auth.signed_in&target_id={user.Id}");
        Assert.Equal(2, signedIn.GetRawText().Split("\"method\":\"oidc\"").Length - 1);
    }

    [Fact]
    public async Task A_callback_with_a_wrong_state_is_refused_and_signs_nobody_in()
    {
        var username = "stateuser" + Guid.NewGuid().ToString("N")[..6];
        var subject = await Stack.NewAccountAsync(username);
        var page = await Stack.Web.NewPageAsync();
        // The provider's redirect back to the web UI, with its state changed, as a forged or replayed callback has.
        var tampered = await OidcStack.TamperWithRedirectsAsync(page, $"{Stack.Provider.IssuerText}/interaction/**", "state", state => "x" + state);

        await SignInIsRefusedAndSignsNobodyInAsync(page, subject, username, tampered);
    }

    [Fact]
    public async Task An_id_token_with_a_wrong_nonce_is_refused_and_signs_nobody_in()
    {
        var username = "nonceuser" + Guid.NewGuid().ToString("N")[..6];
        var subject = await Stack.NewAccountAsync(username);
        var page = await Stack.Web.NewPageAsync();
        // The authorization request on its way to the provider, with another nonce: the provider signs an ID token
        // carrying it, which is not the nonce this browser's sign-in drew.
        var tampered = await OidcStack.TamperWithRedirectsAsync(page, "**/login/oidc?**", "nonce", _ => "forged-" + Guid.NewGuid().ToString("N"));

        await SignInIsRefusedAndSignsNobodyInAsync(page, subject, username, tampered);
    }

    [Fact]
    public async Task A_provider_username_that_a_local_account_has_is_refused_with_a_clear_message_and_the_local_account_is_untouched()
    {
        var username = await Stack.Web.NewUserAsync("local");
        var subject = await Stack.NewAccountAsync(username, OidcStack.AdminGroup);
        var page = await Stack.Web.NewPageAsync();

        await OidcStack.SignInWithProviderAsync(page, subject);

        Assert.Contains("already taken by a StreamSpace account that does not sign in with Test ID", await OidcStack.LoginErrorAsync(page), StringComparison.Ordinal);
        Assert.Equal((int)HttpStatusCode.Unauthorized, (await page.APIRequest.GetAsync("api/v1/auth/me")).Status);
        var local = await Stack.FindUserAsync(username);
        Assert.Equal((UserSources.Local, UserRoles.User), (local!.Source, local.Role));
        await page.Context.CloseAsync();

        // The local account still signs in with its password.
        page = await Stack.Web.NewPageAsync();
        await WebFixture.LogInAsync(page, username, WebFixture.UserPassword);
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task A_user_disabled_in_streamspace_cannot_sign_in_through_the_provider()
    {
        var username = "dave" + Guid.NewGuid().ToString("N")[..6];
        var subject = await Stack.NewAccountAsync(username);
        var page = await Stack.Web.NewPageAsync();
        await OidcStack.SignInWithProviderAsync(page, subject);
        await OidcStack.WaitForCatalogAsync(page);
        await page.Context.CloseAsync();

        var user = await Stack.FindUserAsync(username);
        using (var admin = await Stack.Web.Api.AdminClientAsync())
        {
            (await admin.PatchAsJsonAsync($"/api/v1/users/{user!.Id}", new { disabled = true })).EnsureSuccessStatusCode();
        }

        page = await Stack.Web.NewPageAsync();
        await OidcStack.SignInWithProviderAsync(page, subject);
        Assert.Contains("disabled", await OidcStack.LoginErrorAsync(page), StringComparison.Ordinal);
        Assert.Equal((int)HttpStatusCode.Unauthorized, (await page.APIRequest.GetAsync("api/v1/auth/me")).Status);
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task Logging_out_leaves_the_provider_signed_in_without_oidc_end_session()
    {
        var username = "frank" + Guid.NewGuid().ToString("N")[..6];
        var subject = await Stack.NewAccountAsync(username);
        var page = await Stack.Web.NewPageAsync();
        await OidcStack.SignInWithProviderAsync(page, subject);
        await OidcStack.WaitForCatalogAsync(page);

        await page.GetByRole(AriaRole.Button, new() { Name = "Log out" }).ClickAsync();
        // Back on the login page once it shows its provider link: waiting for the page's load event instead timed out
        // on a busy machine after the redirect chain had already arrived.
        await page.WaitForURLAsync("**/login", new() { WaitUntil = WaitUntilState.Commit });
        await page.GetByRole(AriaRole.Link, new() { Name = $"Sign in with {OidcStack.DisplayName}" }).WaitForAsync();
        Assert.Equal((int)HttpStatusCode.Unauthorized, (await page.APIRequest.GetAsync("api/v1/auth/me")).Status);

        // The provider still knows this browser: signing in again asks for nothing there.
        await OidcStack.SignInWithProviderAsync(page, subject, providerAsksToLogIn: false);
        await OidcStack.WaitForCatalogAsync(page);
        await page.Context.CloseAsync();
    }

    /// <summary>The sign-in through the provider, with one answer tampered with: refused on the login page, and nobody signed in or created.</summary>
    private async Task SignInIsRefusedAndSignsNobodyInAsync(IPage page, string subject, string username, Func<int> tampered)
    {
        await OidcStack.SignInWithProviderAsync(page, subject);

        Assert.Contains("did not complete", await OidcStack.LoginErrorAsync(page), StringComparison.Ordinal);
        Assert.Equal(1, tampered());
        Assert.Equal((int)HttpStatusCode.Unauthorized, (await page.APIRequest.GetAsync("api/v1/auth/me")).Status);
        Assert.Null(await Stack.FindUserAsync(username));
        await page.Context.CloseAsync();
    }
}
