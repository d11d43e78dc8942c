using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using StreamSpace.Contracts.Api;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Api.Features.Auth;

/// <summary>
/// Two API instances on one database: each revocation is made on the first; the stolen token must stop working there
/// at once and on the second within 5 s (NOTIFY, or at worst the second's 5 s cache).
/// </summary>
public sealed class TokenRevocationTests : IAsyncLifetime
{
    private const string Password = "user-password-123";
    private static readonly TimeSpan Within = TimeSpan.FromSeconds(5);

    private ApiFactory first = null!;
    private ApiFactory second = null!;

    public async Task InitializeAsync()
    {
        var database = await SharedPostgres.CreateDatabaseAsync();
        first = new ApiFactory(database).Start();
        second = new ApiFactory(database).Start();
    }

    public async Task DisposeAsync()
    {
        await second.DisposeAsync();
        await first.DisposeAsync();
    }

    [Theory]
    [InlineData("password changed by the user")]
    [InlineData("password reset by an admin")]
    [InlineData("logout-all")]
    [InlineData("admin sign-out")]
    [InlineData("user disabled")]
    [InlineData("user deleted")]
    public async Task A_stolen_token_gets_401_on_every_instance_within_5s(string revocation)
    {
        var (userId, username) = await NewUserAsync();
        var stolen = await LoginAsync(username);
        await AssertWorksAsync(stolen);

        using var victim = ClientWith(first, await LoginAsync(username));
        using var admin = await first.AdminClientAsync();
        var response = revocation switch
        {
            "password changed by the user" => await victim.PutAsJsonAsync("/api/v1/users/me/password",
                new { current_password = Password, new_password = "a-new-password-456" }),
            "password reset by an admin" => await admin.PatchAsJsonAsync($"/api/v1/users/{userId}", new { password = "a-new-password-456" }),
            "logout-all" => await victim.PostAsync("/api/v1/auth/logout-all", null),
            "admin sign-out" => await admin.PostAsync($"/api/v1/users/{userId}/sign-out", null),
            "user disabled" => await admin.PatchAsJsonAsync($"/api/v1/users/{userId}", new { disabled = true }),
            "user deleted" => await admin.DeleteAsync($"/api/v1/users/{userId}"),
            _ => throw new ArgumentOutOfRangeException(nameof(revocation)),
        };
        Assert.True(response.IsSuccessStatusCode, $"{revocation}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");

        await AssertRevokedAsync(stolen);
    }

    [Fact]
    public async Task Re_enabling_a_disabled_user_does_not_revive_their_old_tokens()
    {
        var (userId, username) = await NewUserAsync();
        var stolen = await LoginAsync(username);
        using var admin = await first.AdminClientAsync();
        (await admin.PatchAsJsonAsync($"/api/v1/users/{userId}", new { disabled = true })).EnsureSuccessStatusCode();
        (await admin.PatchAsJsonAsync($"/api/v1/users/{userId}", new { disabled = false })).EnsureSuccessStatusCode();

        await AssertRevokedAsync(stolen);
        await AssertWorksAsync(await LoginAsync(username));
    }

    [Fact]
    public async Task Logout_ends_that_token_only_not_another_of_the_same_user()
    {
        var (_, username) = await NewUserAsync();
        var browser = await LoginAsync(username);
        var phone = await LoginAsync(username);
        await AssertWorksAsync(browser);
        await AssertWorksAsync(phone);

        using var client = ClientWith(first, browser);
        Assert.Equal(HttpStatusCode.NoContent, (await client.PostAsync("/api/v1/auth/logout", null)).StatusCode);

        await AssertRevokedAsync(browser);
        await AssertWorksAsync(phone);
    }

    [Fact]
    public async Task An_admin_sign_out_of_an_unknown_user_is_404_and_of_a_user_by_a_user_is_403()
    {
        using var admin = await first.AdminClientAsync();
        await (await admin.PostAsync($"/api/v1/users/{Guid.NewGuid()}/sign-out", null)).AssertProblemAsync(HttpStatusCode.NotFound);

        var (userId, username) = await NewUserAsync();
        using var user = ClientWith(first, await LoginAsync(username));
        Assert.Equal(HttpStatusCode.Forbidden, (await user.PostAsync($"/api/v1/users/{userId}/sign-out", null)).StatusCode);
    }

    [Fact]
    public async Task Sign_in_sign_out_logout_all_and_admin_sign_out_are_audited()
    {
        var (userId, username) = await NewUserAsync();
        using (var user = ClientWith(first, await LoginAsync(username)))
        {
            (await user.PostAsync("/api/v1/auth/logout", null)).EnsureSuccessStatusCode();
        }

        using (var user = ClientWith(first, await LoginAsync(username)))
        {
            (await user.PostAsync("/api/v1/auth/logout-all", null)).EnsureSuccessStatusCode();
        }

        using var admin = await first.AdminClientAsync();
        (await admin.PostAsync($"/api/v1/users/{userId}/sign-out", null)).EnsureSuccessStatusCode();

        var audit = await (await admin.GetAsync($"/api/v1/audit?target_type=user&target_id={userId}&page_size=100")).AssertJsonAsync<AuditPage>(HttpStatusCode.OK);
        var rows = audit.Items.Select(e => (e.Action, e.Actor)).ToList();
        Assert.Equal(2, rows.Count(r => r == ("auth.signed_in", username)));
        Assert.Contains(("auth.signed_out", username), rows);
        Assert.Contains(("auth.signed_out_everywhere", username), rows);
        Assert.Contains(("user.signed_out", ApiFactory.AdminUsername), rows);
    }

    private async Task<(Guid Id, string Username)> NewUserAsync()
    {
        var username = "victim-" + Guid.NewGuid().ToString("N")[..8];
        using var admin = await first.AdminClientAsync();
        var created = await (await admin.PostAsJsonAsync("/api/v1/users", new CreateUserRequest(username, Password), ApiJson.Options))
            .AssertJsonAsync<UserResponse>(HttpStatusCode.Created);
        return (created.Id, username);
    }

    private async Task<string> LoginAsync(string username)
    {
        using var client = first.CreateClient();
        var login = await (await client.PostAsJsonAsync("/api/v1/auth/login", new LoginRequest(username, Password), ApiJson.Options))
            .AssertJsonAsync<LoginResponse>(HttpStatusCode.OK);
        return login.Token;
    }

    private static HttpClient ClientWith(ApiFactory api, string token)
    {
        var client = api.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return client;
    }

    private static async Task<HttpStatusCode> MeAsync(ApiFactory api, string token)
    {
        using var client = ClientWith(api, token);
        return (await client.GetAsync("/api/v1/auth/me")).StatusCode;
    }

    /// <summary>Works on both instances (which also puts the user in each instance's cache).</summary>
    private async Task AssertWorksAsync(string token)
    {
        Assert.Equal(HttpStatusCode.OK, await MeAsync(first, token));
        Assert.Equal(HttpStatusCode.OK, await MeAsync(second, token));
    }

    private async Task AssertRevokedAsync(string token)
    {
        Assert.Equal(HttpStatusCode.Unauthorized, await MeAsync(first, token));
        await Eventually.TrueAsync(async () => await MeAsync(second, token) == HttpStatusCode.Unauthorized, Within,
            "the other API instance to refuse the revoked token");
    }
}

/// <summary>Refreshes keep the original sign-in time; past SESSION_MAX_LIFETIME the user signs in again. Time is a fake.</summary>
public sealed class SessionMaxLifetimeTests : IAsyncLifetime
{
    private readonly FakeTimeProvider clock = new(DateTimeOffset.UtcNow);
    private ApiFactory api = null!;

    public async Task InitializeAsync() =>
        api = new ApiFactory(await SharedPostgres.CreateDatabaseAsync(), new Dictionary<string, string?> { ["SESSION_MAX_LIFETIME"] = "1h" },
            services => services.AddSingleton<TimeProvider>(clock)).Start();

    public async Task DisposeAsync() => await api.DisposeAsync();

    [Fact]
    public async Task A_refresh_keeps_the_sign_in_time_and_past_the_max_lifetime_gets_401()
    {
        var signedInAt = clock.GetUtcNow();
        using var client = await api.AdminClientAsync();
        var original = AuthTime(client);

        clock.Advance(TimeSpan.FromMinutes(50));
        var refreshed = await (await client.PostAsync("/api/v1/auth/refresh", null)).AssertJsonAsync<LoginResponse>(HttpStatusCode.OK);
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", refreshed.Token);
        Assert.Equal(original, AuthTime(client));
        // The token itself ends with the sign-in's lifetime, not 8h (JWT_LIFETIME) after the refresh.
        Assert.True(refreshed.ExpiresAt <= signedInAt + TimeSpan.FromHours(1));
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/api/v1/auth/me")).StatusCode);

        clock.Advance(TimeSpan.FromMinutes(11));
        await (await client.PostAsync("/api/v1/auth/refresh", null)).AssertProblemAsync(HttpStatusCode.Unauthorized);

        // Signing in again with the password starts a new sign-in.
        using var again = await api.AdminClientAsync();
        Assert.Equal(HttpStatusCode.OK, (await again.PostAsync("/api/v1/auth/refresh", null)).StatusCode);
    }

    private static long AuthTime(HttpClient client)
    {
        var payload = client.DefaultRequestHeaders.Authorization!.Parameter!.Split('.')[1];
        var json = Encoding.UTF8.GetString(Convert.FromBase64String(payload.PadRight(payload.Length + (4 - payload.Length % 4) % 4, '=').Replace('-', '+').Replace('_', '/')));
        return JsonDocument.Parse(json).RootElement.GetProperty("auth_time").GetInt64();
    }
}
