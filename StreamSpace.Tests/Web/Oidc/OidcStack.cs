using System.Net.Http.Json;
using Microsoft.Playwright;
using StreamSpace.Contracts.Api;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Web.Oidc;

/// <summary>
/// The web UI and the API configured for a real OpenID provider (<see cref="OidcProvider"/>), with no agent: the
/// tests sign in, they launch nothing. Members of the provider's group <see cref="AdminGroup"/> are admins.
/// </summary>
public sealed class OidcStack : IAsyncDisposable
{
    public const string DisplayName = "Test ID";
    public const string AdminGroup = "streamspace-admins";

    private OidcStack(OidcProvider provider, WebFixture web)
    {
        Provider = provider;
        Web = web;
    }

    public OidcProvider Provider { get; }

    public WebFixture Web { get; }

    public static async Task<OidcStack> StartAsync(bool localLogin, bool endSession)
    {
        // The provider must know the web's redirect URIs, and the web the provider's issuer: the web's address comes first.
        var webAddress = new Uri($"http://127.0.0.1:{PostgresServer.FreePort()}/");
        var provider = await OidcProvider.StartAsync(webAddress, new Dictionary<string, OidcAccount>());
        var shared = new Dictionary<string, string>
        {
            ["OIDC_ISSUER"] = provider.IssuerText,
            ["OIDC_CLIENT_ID"] = OidcProvider.ClientId,
            ["LOCAL_LOGIN"] = localLogin ? "true" : "false",
        };
        var web = new WebFixture(new WebStackOptions
        {
            WithAgent = false,
            WebAddress = webAddress,
            ApiSettings = new Dictionary<string, string?>(shared.Select(s => KeyValuePair.Create(s.Key, (string?)s.Value)))
            {
                ["OIDC_ADMIN_GROUPS"] = $"{AdminGroup},other-admins",
            },
            WebEnvironment = new Dictionary<string, string>(shared)
            {
                ["OIDC_CLIENT_SECRET"] = OidcProvider.ClientSecret,
                ["OIDC_DISPLAY_NAME"] = DisplayName,
                ["OIDC_END_SESSION"] = endSession ? "true" : "false",
                // The test provider gives the groups claim with a scope of its own, as Keycloak can.
                ["OIDC_SCOPES"] = "openid profile email groups",
            },
        });
        try
        {
            await web.InitializeAsync();
        }
        catch
        {
            await web.DisposeAsync();
            await provider.DisposeAsync();
            throw;
        }

        return new OidcStack(provider, web);
    }

    /// <summary>A provider account of a new, unique user; returns its subject (what its login page takes).</summary>
    public async Task<string> NewAccountAsync(string username, params string[] groups)
    {
        var subject = "sub-" + Guid.NewGuid().ToString("N")[..10];
        await Provider.SetAccountAsync(subject, new OidcAccount(username, $"{username} Example", $"{username}@example.com", groups));
        return subject;
    }

    /// <summary>
    /// From the login page, "Sign in with Test ID", and the provider's own login form when the provider has no
    /// sign-in of this browser yet.
    /// </summary>
    public static async Task SignInWithProviderAsync(IPage page, string subject, bool providerAsksToLogIn = true)
    {
        await page.GotoAsync("login");
        await page.GetByRole(AriaRole.Link, new() { Name = $"Sign in with {DisplayName}" }).ClickAsync();
        if (providerAsksToLogIn)
        {
            await page.Locator("input[name=login]").FillAsync(subject);
            await page.Locator("input[name=password]").FillAsync("any password");
            await page.GetByRole(AriaRole.Button, new() { Name = "Sign-in" }).ClickAsync();
        }
    }

    /// <summary>
    /// Changes one query parameter of the redirects that answer requests to <paramref name="urlGlob"/>, as an
    /// attacker between the browser and the sites could. Playwright's routes see only the request a navigation
    /// starts with, not the ones it is redirected to, so the route follows the redirects itself (with the browser's
    /// cookies) until one carries the parameter, changes it there, and hands the browser that redirect. Returns how
    /// many it changed, so far.
    /// </summary>
    public static async Task<Func<int>> TamperWithRedirectsAsync(IPage page, string urlGlob, string parameter, Func<string?, string> change)
    {
        var changed = 0;
        await page.RouteAsync(urlGlob, async route =>
        {
            var url = new Uri(route.Request.Url);
            var response = await route.FetchAsync(new() { MaxRedirects = 0 });
            while (true)
            {
                var headers = response.HeadersArray.Select(h => KeyValuePair.Create(h.Name, h.Value)).ToList();
                var location = headers.FindIndex(h => h.Key.Equals("location", StringComparison.OrdinalIgnoreCase));
                if (location < 0)
                {
                    await route.FulfillAsync(new() { Response = response });
                    return;
                }

                var target = new UriBuilder(new Uri(url, headers[location].Value));
                var query = System.Web.HttpUtility.ParseQueryString(target.Query);
                if (query[parameter] is null)
                {
                    // A redirect within the sign-in that does not carry it yet: follow it as the browser would.
                    url = target.Uri;
                    response = await page.Context.APIRequest.GetAsync(url.ToString(), new() { MaxRedirects = 0 });
                    continue;
                }

                query[parameter] = change(query[parameter]);
                target.Query = query.ToString();
                headers[location] = KeyValuePair.Create(headers[location].Key, target.Uri.ToString());
                Interlocked.Increment(ref changed);
                await route.FulfillAsync(new() { Response = response, Headers = headers });
                return;
            }
        });
        return () => Volatile.Read(ref changed);
    }

    public static Task WaitForCatalogAsync(IPage page) =>
        page.GetByRole(AriaRole.Heading, new() { Name = "Catalog" }).WaitForAsync();

    /// <summary>The login page's alert, once the browser is back on it.</summary>
    public static async Task<string> LoginErrorAsync(IPage page)
    {
        try
        {
            await page.WaitForURLAsync("**/login?**", new() { WaitUntil = WaitUntilState.Commit });
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException($"the browser is at {page.Url}, not back on the login page: {(await page.ContentAsync())[^600..]}", e);
        }

        return await page.Locator("#login-error").InnerTextAsync();
    }

    /// <summary>The user as the admin API lists it; null when there is none of that name.</summary>
    public async Task<UserResponse?> FindUserAsync(string username)
    {
        using var admin = await Web.Api.AdminClientAsync();
        var users = await admin.GetFromJsonAsync<List<UserResponse>>("/api/v1/users", ApiJson.Options);
        return users!.SingleOrDefault(u => u.Username == username);
    }

    public async ValueTask DisposeAsync()
    {
        await Web.DisposeAsync();
        await Provider.DisposeAsync();
    }
}

/// <summary>Password sign-in on (LOCAL_LOGIN's default), OIDC_END_SESSION off.</summary>
public sealed class OidcFixture : IAsyncLifetime
{
    public OidcStack Stack { get; private set; } = null!;

    public async Task InitializeAsync() => Stack = await OidcStack.StartAsync(localLogin: true, endSession: false);

    public async Task DisposeAsync()
    {
        if (Stack is not null)
        {
            await Stack.DisposeAsync();
        }
    }
}

/// <summary>LOCAL_LOGIN=false and OIDC_END_SESSION=true.</summary>
public sealed class OidcOnlyFixture : IAsyncLifetime
{
    public OidcStack Stack { get; private set; } = null!;

    public async Task InitializeAsync() => Stack = await OidcStack.StartAsync(localLogin: false, endSession: true);

    public async Task DisposeAsync()
    {
        if (Stack is not null)
        {
            await Stack.DisposeAsync();
        }
    }
}
