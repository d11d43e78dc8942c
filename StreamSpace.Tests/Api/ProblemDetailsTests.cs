using System.Net;
using System.Text;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Api;

public sealed class ProblemDetailsTests(ApiFixture fixture) : IClassFixture<ApiFixture>
{
    [Fact]
    public async Task Malformed_json_gets_400_problem_details()
    {
        using var client = fixture.Api.CreateClient();
        var response = await client.PostAsync("/api/v1/auth/login", new StringContent("{\"username\": ", Encoding.UTF8, "application/json"));
        await response.AssertProblemAsync(HttpStatusCode.BadRequest);
    }

    [Fact]
    public async Task Missing_fields_get_400_problem_details_naming_the_field()
    {
        using var client = fixture.Api.CreateClient();
        var response = await client.PostAsync("/api/v1/auth/login", new StringContent("{\"username\":\"admin\"}", Encoding.UTF8, "application/json"));
        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest);
        Assert.Contains("password", problem.ToString(), StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task A_request_without_a_token_gets_401_problem_details()
    {
        using var client = fixture.Api.CreateClient();
        await (await client.GetAsync("/api/v1/auth/me")).AssertProblemAsync(HttpStatusCode.Unauthorized);
    }

    [Fact]
    public async Task An_unknown_route_gets_404_problem_details()
    {
        using var client = fixture.Api.CreateClient();
        await (await client.GetAsync("/api/v1/no-such-thing")).AssertProblemAsync(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task The_openapi_document_describes_the_login_endpoint()
    {
        using var client = fixture.Api.CreateClient();
        var document = await client.GetStringAsync("/swagger/v1/swagger.json");
        Assert.Contains("/api/v1/auth/login", document);
    }
}
