using System.Net.Http.Headers;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using StreamSpace.Web.Features.Auth;

namespace StreamSpace.Web.Features.Api;

/// <summary>
/// Calls the API as the signed-in user, with the JWT kept inside the auth cookie. Inject it into pages.
/// The token never reaches the browser's JavaScript: it is read here, on the server, for each call.
/// </summary>
public sealed class ApiSession(StreamSpaceApi api, IHttpContextAccessor httpContextAccessor)
{
    public Task<ApiResult<T>> GetAsync<T>(string path, CancellationToken cancellationToken = default) =>
        SendAsync<T>(new HttpRequestMessage(HttpMethod.Get, path), cancellationToken);

    public Task<ApiResult<T>> PostAsync<T>(string path, object body, CancellationToken cancellationToken = default) =>
        SendAsync<T>(new HttpRequestMessage(HttpMethod.Post, path) { Content = JsonContent.Create(body, options: ApiJson.Options) }, cancellationToken);

    /// <summary>Sends the request with the user's bearer token, and disposes it.</summary>
    public async Task<ApiResult<T>> SendAsync<T>(HttpRequestMessage request, CancellationToken cancellationToken = default)
    {
        using (request)
        {
            var token = await AccessTokenAsync();
            if (token is null)
            {
                return ApiResult<T>.Failure(ApiProblem.NotSignedIn);
            }

            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            return await api.SendAsync<T>(request, cancellationToken);
        }
    }

    /// <summary>
    /// The current user's API token, or null when signed out.
    /// During static rendering the HttpContext is the page's request. In an interactive circuit it is the request that
    /// opened the circuit, which carried the same cookie: logging in and out are full page loads, so it is never stale
    /// (the pattern Microsoft documents for tokens in Blazor Web Apps).
    /// </summary>
    public async Task<string?> AccessTokenAsync() => httpContextAccessor.HttpContext is { } httpContext
        ? await httpContext.GetTokenAsync(CookieAuthenticationDefaults.AuthenticationScheme, StreamSpaceClaims.AccessTokenName)
        : null;
}
