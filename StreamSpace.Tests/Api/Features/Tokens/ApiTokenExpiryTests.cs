using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using StreamSpace.Contracts.Api;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Api.Features.Tokens;

/// <summary>A token's expiry against the API's injected clock, which the test moves.</summary>
public sealed class ApiTokenExpiryTests : IAsyncLifetime
{
    private readonly FakeTimeProvider clock = new(DateTimeOffset.UtcNow);
    private ApiFactory api = null!;

    public async Task InitializeAsync() =>
        api = new ApiFactory(await SharedPostgres.CreateDatabaseAsync(), configureServices: services => services.AddSingleton<TimeProvider>(clock)).Start();

    public async Task DisposeAsync() => await api.DisposeAsync();

    [Fact]
    public async Task A_token_works_until_its_expiry_and_gets_401_from_then_on()
    {
        using var user = await api.NewUserClientAsync();
        var created = await (await user.PostAsync("/api/v1/users/me/tokens",
            System.Net.Http.Json.JsonContent.Create(new CreateApiTokenRequest("nightly", 2, [ApiTokenScopes.Read]), options: ApiJson.Options)))
            .AssertJsonAsync<CreatedApiTokenResponse>(HttpStatusCode.Created);
        Assert.Equal(clock.GetUtcNow().AddDays(2).ToUnixTimeSeconds(), created.Details.ExpiresAt.ToUnixTimeSeconds());
        using var script = api.TokenClient(created.Token);

        clock.Advance(TimeSpan.FromDays(2) - TimeSpan.FromSeconds(1));
        await (await script.GetAsync("/api/v1/templates")).AssertJsonAsync(HttpStatusCode.OK);

        clock.Advance(TimeSpan.FromSeconds(1));
        var refused = await (await script.GetAsync("/api/v1/templates")).AssertProblemAsync(HttpStatusCode.Unauthorized);
        Assert.Equal("The API token expired.", refused.GetProperty("detail").GetString());
    }
}
