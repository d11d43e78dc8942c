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

    [Fact]
    public async Task The_last_use_is_written_at_most_once_a_minute()
    {
        using var user = await api.NewUserClientAsync();
        var created = await (await user.PostAsync("/api/v1/users/me/tokens",
            System.Net.Http.Json.JsonContent.Create(new CreateApiTokenRequest("poller", 30, [ApiTokenScopes.Read]), options: ApiJson.Options)))
            .AssertJsonAsync<CreatedApiTokenResponse>(HttpStatusCode.Created);
        using var script = api.TokenClient(created.Token);

        await (await script.GetAsync("/api/v1/templates")).AssertJsonAsync(HttpStatusCode.OK);
        var first = await LastUsedAsync(user, created.Details.Id);
        Assert.Equal(clock.GetUtcNow().ToUnixTimeSeconds(), first?.ToUnixTimeSeconds());

        clock.Advance(TimeSpan.FromSeconds(59));
        await (await script.GetAsync("/api/v1/templates")).AssertJsonAsync(HttpStatusCode.OK);
        Assert.Equal(first, await LastUsedAsync(user, created.Details.Id));

        clock.Advance(TimeSpan.FromSeconds(1));
        await (await script.GetAsync("/api/v1/templates")).AssertJsonAsync(HttpStatusCode.OK);
        Assert.Equal(clock.GetUtcNow().ToUnixTimeSeconds(), (await LastUsedAsync(user, created.Details.Id))?.ToUnixTimeSeconds());
    }

    private static async Task<DateTimeOffset?> LastUsedAsync(HttpClient user, Guid id) =>
        (await (await user.GetAsync("/api/v1/users/me/tokens")).AssertJsonAsync<List<ApiTokenResponse>>(HttpStatusCode.OK)).Single(t => t.Id == id).LastUsedAt;
}
