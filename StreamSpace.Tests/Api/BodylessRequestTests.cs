using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Api;

/// <summary>
/// Many HTTP clients send <c>Content-Type: application/json</c> on every request. A route that takes no body must
/// answer such a request as it answers one without the header, whatever the route and however the body is left out.
/// </summary>
public sealed class BodylessRequestTests(ApiFixture fixture) : IClassFixture<ApiFixture>
{
    /// <summary>The ways a client leaves the body out while it still names JSON as the body's type.</summary>
    public enum NoBody
    {
        /// <summary>No Content-Length and no Transfer-Encoding, as <c>curl -H 'Content-Type: application/json'</c> sends.</summary>
        Absent,
        /// <summary><c>Content-Length: 0</c>.</summary>
        ZeroLength,
        /// <summary>A chunked body that ends at once.</summary>
        EmptyChunked,
    }

    [Theory]
    [InlineData(NoBody.Absent)]
    [InlineData(NoBody.ZeroLength)]
    [InlineData(NoBody.EmptyChunked)]
    public async Task Every_route_without_a_body_accepts_a_json_content_type_with_no_body(NoBody shape)
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
            var (status, body) = await SendAsync(admin, method, Fill(path), shape);
            if (status == HttpStatusCode.BadRequest || (int)status >= 500)
            {
                failures.Add($"{method} {path}: {(int)status} {body}");
            }
        }

        Assert.True(failures.Count == 0, string.Join(Environment.NewLine, failures));
    }

    /// <summary>The answer's status, and its body when it is an error (a route may stream, so a success is not read).</summary>
    private async Task<(HttpStatusCode Status, string Body)> SendAsync(HttpClient signedIn, string method, string path, NoBody shape)
    {
        if (shape == NoBody.Absent)
        {
            // HttpClient always frames a body it is given, so this one is written by hand.
            var address = fixture.Api.BaseAddress;
            using var tcp = new TcpClient();
            await tcp.ConnectAsync(address.Host, address.Port);
            await using var stream = tcp.GetStream();
            await stream.WriteAsync(Encoding.ASCII.GetBytes(
                $"{method} {path} HTTP/1.1\r\nHost: {address.Authority}\r\nAuthorization: {signedIn.DefaultRequestHeaders.Authorization}\r\n" +
                "Content-Type: application/json\r\nConnection: close\r\n\r\n"));
            using var reader = new StreamReader(stream);
            var status = (HttpStatusCode)int.Parse((await reader.ReadLineAsync())!.Split(' ')[1]);
            return (status, IsError(status) ? await reader.ReadToEndAsync() : "");
        }

        using var request = new HttpRequestMessage(new HttpMethod(method), path)
        {
            Content = shape == NoBody.ZeroLength ? new ByteArrayContent([]) : new EmptyChunkedContent(),
        };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        using var response = await signedIn.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        return (response.StatusCode, IsError(response.StatusCode) ? await response.Content.ReadAsStringAsync() : "");
    }

    private static bool IsError(HttpStatusCode status) => (int)status >= 400;

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

    /// <summary>Content of no known length, which HttpClient sends chunked: here, the last chunk at once.</summary>
    private sealed class EmptyChunkedContent : HttpContent
    {
        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) => Task.CompletedTask;

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }
    }
}
