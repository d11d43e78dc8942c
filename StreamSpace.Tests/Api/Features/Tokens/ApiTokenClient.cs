using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using StreamSpace.Contracts.Api;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Api.Features.Tokens;

public static class ApiTokenClient
{
    /// <summary>Creates a token through the API as the signed-in user of <paramref name="client"/>.</summary>
    public static async Task<CreatedApiTokenResponse> CreateTokenAsync(this HttpClient client, params string[] scopes) =>
        await (await client.PostAsJsonAsync("/api/v1/users/me/tokens", new CreateApiTokenRequest("script", 30, scopes), ApiJson.Options))
            .AssertJsonAsync<CreatedApiTokenResponse>(HttpStatusCode.Created);

    /// <summary>A client that authenticates with the personal API token alone.</summary>
    public static HttpClient TokenClient(this ApiFactory api, string token)
    {
        var client = api.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return client;
    }
}
