using System.Net;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Api;

public sealed class HealthTests
{
    [Fact]
    public async Task Health_is_healthy_while_the_database_answers_and_unhealthy_with_a_reason_once_it_stops()
    {
        await using var postgres = await PostgresServer.StartAsync();
        await using var api = new ApiFactory(await postgres.CreateDatabaseAsync()).Start();
        using var client = api.CreateClient();

        var healthy = await client.GetAsync("/health");
        Assert.Equal(HttpStatusCode.OK, healthy.StatusCode);
        Assert.Equal("""{"service":"streamspace-api","status":"healthy"}""", await healthy.Content.ReadAsStringAsync());

        await postgres.StopAsync();

        var unhealthy = await client.GetAsync("/health");
        var body = await unhealthy.AssertJsonAsync(HttpStatusCode.ServiceUnavailable);
        Assert.Equal("streamspace-api", body.GetProperty("service").GetString());
        Assert.Equal("unhealthy", body.GetProperty("status").GetString());
        Assert.StartsWith("database: unreachable", body.GetProperty("reason").GetString());

        // /alive is about the process only, so an orchestrator does not restart the API for a database outage.
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/alive")).StatusCode);
    }
}
