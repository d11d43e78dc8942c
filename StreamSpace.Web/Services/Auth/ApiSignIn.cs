using System.Security.Claims;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using StreamSpace.Contracts.Api;
using StreamSpace.Web.Services.Api;

namespace StreamSpace.Web.Services.Auth;

/// <summary>
/// Signs in to the API, with a username and password or an OpenID provider's ID token, and turns the JWT it returns
/// into the web's auth cookie.
/// </summary>
public sealed class ApiSignIn(StreamSpaceApi api)
{
    /// <summary>Signs the user in on <paramref name="httpContext"/>; returns null on success, or why it failed.</summary>
    public async Task<ApiError?> SignInAsync(HttpContext httpContext, string username, string password, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, ApiRoutes.Login)
        {
            Content = JsonContent.Create(new LoginRequest(username, password), options: ApiJson.Options),
        };
        // The API limits login attempts per client address: tell it the browser's, not this server's.
        if (httpContext.Connection.RemoteIpAddress is { } client)
        {
            request.Headers.Add("X-Forwarded-For", client.ToString());
        }

        var result = await api.SendAsync<LoginResponse>(request, cancellationToken);
        if (!result.Succeeded)
        {
            return result.Problem;
        }

        if (result.Value is not { } login)
        {
            // A 2xx without a body is not the contract; treat it like a broken API rather than a signed-in user without a token.
            return ApiError.Unreachable;
        }

        var (principal, properties) = CookieFor(login);
        await httpContext.SignInAsync(CookieAuthenticationDefaults.AuthenticationScheme, principal, properties);
        return null;
    }

    /// <summary>
    /// Trades an OpenID provider's ID token for the API's token (the API validates the ID token itself); the
    /// answer becomes the auth cookie through <see cref="CookieFor"/>.
    /// </summary>
    public async Task<ApiResult<LoginResponse>> ExchangeIdTokenAsync(string idToken, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, ApiRoutes.OidcSignIn)
        {
            Content = JsonContent.Create(new OidcSignInRequest(idToken), options: ApiJson.Options),
        };
        return await api.SendAsync<LoginResponse>(request, cancellationToken);
    }

    /// <summary>The auth cookie's content for a sign-in the API answered: the API's claims and its token.</summary>
    public static (ClaimsPrincipal Principal, AuthenticationProperties Properties) CookieFor(LoginResponse login, AuthenticationProperties? properties = null)
    {
        var identity = new ClaimsIdentity(
            [
                new Claim(ClaimNames.Subject, login.User.Id.ToString()),
                new Claim(ClaimNames.Name, login.User.Username),
                new Claim(ClaimNames.Role, login.User.Role),
            ],
            CookieAuthenticationDefaults.AuthenticationScheme,
            ClaimNames.Name,
            ClaimNames.Role);

        properties ??= new AuthenticationProperties();
        // The cookie lives exactly as long as the token inside it, and is not renewed: an expired token means logging in again.
        properties.IsPersistent = true;
        properties.ExpiresUtc = login.ExpiresAt;
        properties.AllowRefresh = false;
        // Stored in the encrypted, HttpOnly cookie: the server can read it back, the browser's JavaScript cannot.
        properties.StoreTokens([new AuthenticationToken { Name = AuthCookie.AccessTokenName, Value = login.Token }]);
        return (new ClaimsPrincipal(identity), properties);
    }

    /// <summary>What the login page says for a failed login.</summary>
    public static string ErrorMessage(ApiError problem) => problem switch
    {
        { IsUnreachable: true } => ApiError.UnreachableMessage,
        { Status: StatusCodes.Status401Unauthorized } => "Invalid username or password.",
        { Status: StatusCodes.Status429TooManyRequests, RetryAfter: { } wait } =>
            $"Too many login attempts. Try again in {Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds))} seconds.",
        { Status: StatusCodes.Status429TooManyRequests } => "Too many login attempts. Try again shortly.",
        { Status: StatusCodes.Status400BadRequest } => "Enter a valid username and password.",
        // LOCAL_LOGIN=false and not the bootstrap admin.
        { Status: StatusCodes.Status403Forbidden } => "Password sign-in is turned off: use the sign-in button above.",
        _ => problem.Message,
    };
}
