using System.Net.Http.Headers;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using StreamSpace.Contracts.Api;
using StreamSpace.Web.Services.Auth;

namespace StreamSpace.Web.Services.Api;

/// <summary>
/// Calls the API as the signed-in user, with the JWT kept inside the auth cookie. Inject it into pages.
/// The token never reaches the browser's JavaScript: it is read here, on the server, for each call.
/// </summary>
public sealed class ApiSession(StreamSpaceApi api, IHttpClientFactory httpClients, IHttpContextAccessor httpContextAccessor)
{
    // Scoped: one per request, or one per interactive circuit. Kept once read, so calls made later in a circuit
    // (timers, the events stream) do not depend on the HttpContext still being reachable.
    private string? token;

    public Task<ApiResult<T>> GetAsync<T>(string path, CancellationToken cancellationToken = default) =>
        SendAsync<T>(new HttpRequestMessage(HttpMethod.Get, path), cancellationToken);

    public Task<ApiResult<T>> PostAsync<T>(string path, object? body, CancellationToken cancellationToken = default) =>
        SendAsync<T>(WithBody(HttpMethod.Post, path, body, ApiJson.Options), cancellationToken);

    public Task<ApiResult<T>> PutAsync<T>(string path, object body, CancellationToken cancellationToken = default) =>
        SendAsync<T>(WithBody(HttpMethod.Put, path, body, ApiJson.Options), cancellationToken);

    public Task<ApiResult<T>> PatchAsync<T>(string path, object body, CancellationToken cancellationToken = default) =>
        SendAsync<T>(WithBody(HttpMethod.Patch, path, body, ApiJson.OmitNulls), cancellationToken);

    public Task<ApiResult<JsonElement>> DeleteAsync(string path, CancellationToken cancellationToken = default) =>
        SendAsync<JsonElement>(new HttpRequestMessage(HttpMethod.Delete, path), cancellationToken);

    /// <summary>Sends the request with the user's bearer token, and disposes it.</summary>
    public async Task<ApiResult<T>> SendAsync<T>(HttpRequestMessage request, CancellationToken cancellationToken = default)
    {
        using (request)
        {
            var bearer = await AccessTokenAsync();
            if (bearer is null)
            {
                return ApiResult<T>.Failure(ApiError.NotSignedIn);
            }

            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
            return await api.SendAsync<T>(request, cancellationToken);
        }
    }

    /// <summary>
    /// The sessions that change, as the API's server-sent events report them, until <paramref name="cancellationToken"/>
    /// is cancelled or the stream ends (the caller reconnects and re-reads the list, since it may have missed changes).
    /// </summary>
    public async IAsyncEnumerable<SessionResponse> WatchSessionsAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var bearer = await AccessTokenAsync();
        if (bearer is null)
        {
            yield break;
        }

        using var request = new HttpRequestMessage(HttpMethod.Get, ApiRoutes.SessionEvents);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
        var client = httpClients.CreateClient(ApiClientExtensions.StreamingHttpClientName);
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        if (!response.IsSuccessStatusCode)
        {
            yield break;
        }

        await using var stream = await response.Content.ReadAsStreamAsync(cancellationToken);
        using var reader = new StreamReader(stream);
        string? eventName = null;
        var data = new System.Text.StringBuilder();
        while (await reader.ReadLineAsync(cancellationToken) is { } line)
        {
            if (line.Length == 0)
            {
                if (eventName == "session" && data.Length > 0 &&
                    JsonSerializer.Deserialize<SessionResponse>(data.ToString(), ApiJson.Options) is { } session)
                {
                    yield return session;
                }

                eventName = null;
                data.Clear();
            }
            else if (line.StartsWith("event:", StringComparison.Ordinal))
            {
                eventName = line["event:".Length..].Trim();
            }
            else if (line.StartsWith("data:", StringComparison.Ordinal))
            {
                data.Append(line["data:".Length..].TrimStart());
            }
        }
    }

    /// <summary>
    /// The current user's API token, or null when signed out.
    /// During static rendering the HttpContext is the page's request. In an interactive circuit it is the request that
    /// opened the circuit, which carried the same cookie: logging in and out are full page loads, so it is never stale
    /// (the pattern Microsoft documents for tokens in Blazor Web Apps).
    /// </summary>
    public async Task<string?> AccessTokenAsync() => token ??= httpContextAccessor.HttpContext is { } httpContext
        ? await httpContext.GetTokenAsync(CookieAuthenticationDefaults.AuthenticationScheme, AuthCookie.AccessTokenName)
        : null;

    private static HttpRequestMessage WithBody(HttpMethod method, string path, object? body, JsonSerializerOptions options) => new(method, path)
    {
        Content = body is null ? null : JsonContent.Create(body, body.GetType(), options: options),
    };
}
