using System.Net;
using System.Text.Json;
using StreamSpace.Contracts.Api;

namespace StreamSpace.Tests.Infrastructure;

public static class HttpAssertions
{
    /// <summary>Asserts the status and that the body is RFC 9457 problem details; returns the parsed body.</summary>
    public static async Task<JsonElement> AssertProblemAsync(this HttpResponseMessage response, HttpStatusCode status)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(status == response.StatusCode, $"Expected {(int)status} but got {(int)response.StatusCode}: {body}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = JsonDocument.Parse(body).RootElement;
        Assert.Equal((int)status, problem.GetProperty("status").GetInt32());
        return problem;
    }

    /// <summary>Asserts the status; returns the body as raw JSON, for tests of the wire format itself.</summary>
    public static Task<JsonElement> AssertJsonAsync(this HttpResponseMessage response, HttpStatusCode status) =>
        response.AssertJsonAsync<JsonElement>(status);

    /// <summary>Asserts the status; returns the body read as the API's contract type <typeparamref name="T"/>.</summary>
    public static async Task<T> AssertJsonAsync<T>(this HttpResponseMessage response, HttpStatusCode status)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(status == response.StatusCode, $"Expected {(int)status} but got {(int)response.StatusCode}: {body}");
        return JsonSerializer.Deserialize<T>(body, ApiJson.Options)!;
    }
}
