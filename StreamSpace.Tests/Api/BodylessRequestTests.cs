using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.RegularExpressions;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Api;

/// <summary>
/// Many HTTP clients send <c>Content-Type: application/json</c> on every request. A route that takes no body must
/// answer such a request with no body as it answers one without the header, whatever the route.
/// </summary>
public sealed class BodylessRequestTests(ApiFixture fixture) : IClassFixture<ApiFixture>
{
    [Fact]
    public async Task Every_route_without_a_body_accepts_a_json_content_type_with_an_empty_body()
    {
        using var anonymous = fixture.Api.CreateClient();
        using var document = JsonDocument.Parse(await anonymous.GetStringAsync("/swagger/v1/swagger.json"));
        var routes = BodylessRoutes(document.RootElement).ToList();
        Assert.Contains(routes, r => r is { Method: "GET", Path: "/api/v1/sessions/{id}" });
        Assert.Contains(routes, r => r is { Method: "POST", Path: "/api/v1/sessions/{id}/connect" });

        var failures = new List<string>();
        foreach (var (method, path) in routes)
        {
            // A fresh sign-in per route: logout and the like end the token they are called with.
            using var admin = await fixture.Api.AdminClientAsync();
            using var request = new HttpRequestMessage(new HttpMethod(method), Fill(path))
            {
                Content = new ByteArrayContent([]) { Headers = { ContentType = new MediaTypeHeaderValue("application/json") } },
            };
            // Headers only: a route may stream (the session events), and its status is all this test reads.
            using var response = await admin.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            if (response.StatusCode == HttpStatusCode.BadRequest || (int)response.StatusCode >= 500)
            {
                failures.Add($"{method} {path}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
            }
        }

        Assert.True(failures.Count == 0, string.Join(Environment.NewLine, failures));
    }

    private sealed record Route(string Method, string Path);

    /// <summary>The document's operations that declare no request body.</summary>
    private static IEnumerable<Route> BodylessRoutes(JsonElement document) =>
        from path in document.GetProperty("paths").EnumerateObject()
        from operation in path.Value.EnumerateObject()
        where operation.Value.ValueKind == JsonValueKind.Object && !operation.Value.TryGetProperty("requestBody", out _)
        select new Route(operation.Name.ToUpperInvariant(), path.Name);

    /// <summary>
    /// The path with a resource that does not exist: a GUID is well-formed for every parameter, a user's id as much as
    /// a session's, so the route binds and answers 404.
    /// </summary>
    private static string Fill(string path) => Regex.Replace(path, "{[^}]+}", _ => Guid.NewGuid().ToString());
}
