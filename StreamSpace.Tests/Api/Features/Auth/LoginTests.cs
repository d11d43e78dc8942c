using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using StreamSpace.Contracts.Api;
using StreamSpace.Tests.Api.Features.Sessions;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Api.Features.Auth;

public sealed class LoginTests(ApiFixture fixture) : IClassFixture<ApiFixture>
{
    [Fact]
    public async Task The_admin_from_the_secret_signs_in_and_gets_a_token_expiry_and_user()
    {
        using var client = fixture.Api.CreateClient();
        var response = await client.PostAsJsonAsync("/api/v1/auth/login", new { username = ApiFactory.AdminUsername, password = ApiFactory.AdminPassword });

        var body = await response.AssertJsonAsync(HttpStatusCode.OK);
        Assert.Equal(3, body.GetProperty("token").GetString()!.Split('.').Length);
        Assert.True(body.GetProperty("expires_at").GetDateTimeOffset() > DateTimeOffset.UtcNow.AddHours(7));
        var user = body.GetProperty("user");
        Assert.Equal("admin", user.GetProperty("username").GetString());
        Assert.Equal("admin", user.GetProperty("role").GetString());
        Assert.True(Guid.TryParse(user.GetProperty("id").GetString(), out _));
    }

    [Fact]
    public async Task Without_oidc_issuer_the_id_token_exchange_answers_404()
    {
        using var client = fixture.Api.CreateClient();
        var response = await client.PostAsJsonAsync("/api/v1/auth/oidc", new { id_token = "a.b.c" });
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }

    [Fact]
    public async Task Usernames_are_matched_without_regard_to_case()
    {
        using var client = fixture.Api.CreateClient();
        var response = await client.PostAsJsonAsync("/api/v1/auth/login", new { username = "ADMIN", password = ApiFactory.AdminPassword });
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task A_wrong_password_and_an_unknown_user_get_the_same_401()
    {
        using var client = fixture.Api.CreateClient();
        var wrongPassword = await client.PostAsJsonAsync("/api/v1/auth/login", new { username = ApiFactory.AdminUsername, password = "not-the-password" });
        var unknownUser = await client.PostAsJsonAsync("/api/v1/auth/login", new { username = "nobody-here", password = "not-the-password" });

        var first = await wrongPassword.AssertProblemAsync(HttpStatusCode.Unauthorized);
        var second = await unknownUser.AssertProblemAsync(HttpStatusCode.Unauthorized);
        Assert.Equal(first.GetProperty("title").GetString(), second.GetProperty("title").GetString());
        Assert.Equal("Invalid username or password.", first.GetProperty("title").GetString());
    }

    [Fact]
    public async Task A_disabled_user_cannot_sign_in_and_their_existing_token_stops_working()
    {
        using var admin = await fixture.Api.AdminClientAsync();
        using var user = await fixture.Api.NewUserClientAsync("to-disable");
        Assert.Equal(HttpStatusCode.OK, (await user.GetAsync("/api/v1/auth/me")).StatusCode);

        var disable = await admin.PatchAsJsonAsync($"/api/v1/users/{await user.UserIdAsync()}", new UpdateUserRequest(Disabled: true), ApiJson.OmitNulls);
        Assert.Equal(HttpStatusCode.OK, disable.StatusCode);

        await (await user.GetAsync("/api/v1/auth/me")).AssertProblemAsync(HttpStatusCode.Unauthorized);
        using var anonymous = fixture.Api.CreateClient();
        var login = await anonymous.PostAsJsonAsync("/api/v1/auth/login", new { username = "to-disable", password = "user-password-123" });
        await login.AssertProblemAsync(HttpStatusCode.Unauthorized);
    }

    [Fact]
    public async Task Refresh_returns_a_new_token_that_works()
    {
        using var client = await fixture.Api.AdminClientAsync();
        var refreshed = await (await client.PostAsync("/api/v1/auth/refresh", null)).AssertJsonAsync<LoginResponse>(HttpStatusCode.OK);

        using var second = fixture.Api.CreateClient();
        second.DefaultRequestHeaders.Authorization = new("Bearer", refreshed.Token);
        var me = await (await second.GetAsync("/api/v1/auth/me")).AssertJsonAsync(HttpStatusCode.OK);
        Assert.Equal("admin", me.GetProperty("username").GetString());
        Assert.False(me.TryGetProperty("password_hash", out _));
    }
}

/// <summary>Its own API, with a low limit, so the other tests' logins do not count against it.</summary>
public sealed class LoginRateLimitTests : IAsyncLifetime
{
    private ApiFactory api = null!;

    public async Task InitializeAsync() =>
        api = new ApiFactory(await SharedPostgres.CreateDatabaseAsync(), new Dictionary<string, string?> { ["LOGIN_ATTEMPTS_PER_MINUTE"] = "3" }).Start();

    public async Task DisposeAsync() => await api.DisposeAsync();

    [Fact]
    public async Task Repeated_attempts_on_one_username_get_429_with_retry_after()
    {
        using var client = api.CreateClient();
        for (var i = 0; i < 3; i++)
        {
            var attempt = await client.PostAsJsonAsync("/api/v1/auth/login", new { username = "victim", password = $"guess-{i}" });
            Assert.Equal(HttpStatusCode.Unauthorized, attempt.StatusCode);
        }

        var limited = await client.PostAsJsonAsync("/api/v1/auth/login", new { username = "victim", password = "guess-4" });
        var problem = await limited.AssertProblemAsync(HttpStatusCode.TooManyRequests);
        Assert.Equal("Too many login attempts.", problem.GetProperty("title").GetString());
        Assert.True(limited.Headers.RetryAfter?.Delta > TimeSpan.Zero);

        // The real password does not get through either while the limit holds.
        var correct = await client.PostAsJsonAsync("/api/v1/auth/login", new { username = "VICTIM", password = "anything" });
        Assert.Equal(HttpStatusCode.TooManyRequests, correct.StatusCode);
    }

    [Fact]
    public async Task A_burst_of_parallel_guesses_gets_no_more_tries_than_the_limit()
    {
        // All sent at once: each is counted before its password is checked, so none can slip past the limit while the
        // others are still hashing.
        using var client = api.CreateClient();
        var attempts = await Task.WhenAll(Enumerable.Range(0, 20).Select(i =>
            client.PostAsJsonAsync("/api/v1/auth/login", new { username = "burst-victim", password = $"guess-{i}" })));

        Assert.Equal(3, attempts.Count(a => a.StatusCode == HttpStatusCode.Unauthorized));
        Assert.Equal(17, attempts.Count(a => a.StatusCode == HttpStatusCode.TooManyRequests));
    }
}

public sealed class LoginRateLimitPerClientTests : IAsyncLifetime
{
    private ApiFactory api = null!;

    public async Task InitializeAsync() =>
        api = new ApiFactory(await SharedPostgres.CreateDatabaseAsync(), new Dictionary<string, string?> { ["LOGIN_ATTEMPTS_PER_MINUTE"] = "3", ["LOGIN_FAILURES_PER_ADDRESS"] = "3" }).Start();

    public async Task DisposeAsync() => await api.DisposeAsync();

    [Fact]
    public async Task One_client_guessing_many_usernames_gets_429()
    {
        using var client = api.CreateClient();
        for (var i = 0; i < 3; i++)
        {
            var attempt = await client.PostAsJsonAsync("/api/v1/auth/login", new { username = $"user-{i}", password = "guess" });
            Assert.Equal(HttpStatusCode.Unauthorized, attempt.StatusCode);
        }

        var limited = await client.PostAsJsonAsync("/api/v1/auth/login", new { username = "user-99", password = "guess" });
        await limited.AssertProblemAsync(HttpStatusCode.TooManyRequests);
        Assert.NotNull(limited.Headers.RetryAfter);
    }

    [Fact]
    public async Task Behind_a_trusted_proxy_each_forwarded_client_has_its_own_limit()
    {
        // The test client connects from loopback, which is trusted like the web app or an ingress in TRUSTED_PROXY_NETWORKS.
        using var client = api.CreateClient();
        for (var i = 0; i < 3; i++)
        {
            var attempt = await LoginFromAsync(client, "203.0.113.7", $"proxied-{i}");
            Assert.Equal(HttpStatusCode.Unauthorized, attempt.StatusCode);
        }

        await (await LoginFromAsync(client, "203.0.113.7", "proxied-99")).AssertProblemAsync(HttpStatusCode.TooManyRequests);

        // Another user behind the same proxy is not locked out by the first one's attempts.
        Assert.Equal(HttpStatusCode.Unauthorized, (await LoginFromAsync(client, "198.51.100.20", "someone-else")).StatusCode);
    }

    private static Task<HttpResponseMessage> LoginFromAsync(HttpClient client, string forwardedFor, string username)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/auth/login") { Content = JsonContent.Create(new { username, password = "guess" }) };
        request.Headers.Add("X-Forwarded-For", forwardedFor);
        return client.SendAsync(request);
    }
}

/// <summary>The limits at their defaults (10 per username and address, 30 per address, 50 per username in 5 minutes).</summary>
public sealed class LoginLockoutTests : IAsyncLifetime
{
    private ApiFactory api = null!;

    public async Task InitializeAsync() =>
        api = new ApiFactory(await SharedPostgres.CreateDatabaseAsync(), new Dictionary<string, string?>
        {
            ["LOGIN_ATTEMPTS_PER_MINUTE"] = "10", ["LOGIN_FAILURES_PER_ADDRESS"] = "30", ["LOGIN_FAILURES_PER_USERNAME"] = "50",
        }).Start();

    public async Task DisposeAsync() => await api.DisposeAsync();

    [Fact]
    public async Task Twenty_failed_logins_for_admin_from_one_address_do_not_lock_admin_out_from_another()
    {
        using var stranger = api.CreateClient();
        var answers = new List<HttpResponseMessage>();
        for (var i = 0; i < 20; i++)
        {
            answers.Add(await stranger.PostAsJsonAsync("/api/v1/auth/login", new { username = ApiFactory.AdminUsername, password = $"guess-{i}" }));
        }

        Assert.All(answers.Take(10), a => Assert.Equal(HttpStatusCode.Unauthorized, a.StatusCode));
        Assert.All(answers.Skip(10), a => Assert.Equal(HttpStatusCode.TooManyRequests, a.StatusCode));
        var retryAfter = answers[^1].Headers.RetryAfter?.Delta;
        Assert.True(retryAfter > TimeSpan.Zero && retryAfter <= TimeSpan.FromMinutes(1), $"Retry-After {retryAfter}");

        using var owner = FromAddress.Client(api, FromAddress.Second);
        var login = await owner.PostAsJsonAsync("/api/v1/auth/login", new { username = ApiFactory.AdminUsername, password = ApiFactory.AdminPassword });
        var token = (await login.AssertJsonAsync<LoginResponse>(HttpStatusCode.OK)).Token;

        // The lockout is one audit row, not one per refused attempt.
        owner.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        var audit = await (await owner.GetAsync("/api/v1/audit?action=auth.login_limited")).AssertJsonAsync<AuditPage>(HttpStatusCode.OK);
        var row = Assert.Single(audit.Items);
        Assert.Equal("login", row.TargetType);
        Assert.Equal(ApiFactory.AdminUsername, row.TargetId);
        Assert.Equal("login.user_address", row.Details.GetProperty("limit").GetString());
    }

    [Fact]
    public async Task Successful_logins_do_not_count()
    {
        using var client = FromAddress.Client(api, FromAddress.Third);
        for (var i = 0; i < 15; i++)
        {
            var login = await client.PostAsJsonAsync("/api/v1/auth/login", new { username = ApiFactory.AdminUsername, password = ApiFactory.AdminPassword });
            Assert.Equal(HttpStatusCode.OK, login.StatusCode);
        }

        var wrong = await client.PostAsJsonAsync("/api/v1/auth/login", new { username = ApiFactory.AdminUsername, password = "not-it" });
        Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
    }
}

/// <summary>The slow per-username limit: many addresses guessing one account are stopped, for one window at most.</summary>
public sealed class LoginPerUsernameLimitTests : IAsyncLifetime
{
    private ApiFactory api = null!;

    public async Task InitializeAsync() =>
        api = new ApiFactory(await SharedPostgres.CreateDatabaseAsync(), new Dictionary<string, string?> { ["LOGIN_FAILURES_PER_USERNAME"] = "5" }).Start();

    public async Task DisposeAsync() => await api.DisposeAsync();

    [Fact]
    public async Task Failures_from_many_addresses_lock_the_username_for_at_most_five_minutes()
    {
        using var client = api.CreateClient();
        for (var i = 0; i < 5; i++)
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await LoginFromAsync(client, $"203.0.113.{i + 1}", "password-guess")).StatusCode);
        }

        var limited = await LoginFromAsync(client, "198.51.100.9", ApiFactory.AdminPassword);
        Assert.Equal(HttpStatusCode.TooManyRequests, limited.StatusCode);
        Assert.True(limited.Headers.RetryAfter?.Delta is { } wait && wait > TimeSpan.Zero && wait <= TimeSpan.FromMinutes(5), $"Retry-After {limited.Headers.RetryAfter}");
    }

    private static Task<HttpResponseMessage> LoginFromAsync(HttpClient client, string forwardedFor, string password)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/auth/login") { Content = JsonContent.Create(new { username = ApiFactory.AdminUsername, password }) };
        request.Headers.Add("X-Forwarded-For", forwardedFor);
        return client.SendAsync(request);
    }
}

/// <summary>PUT /users/me/password counts wrong current passwords per user, like login.</summary>
public sealed class ChangePasswordLimitTests : IAsyncLifetime
{
    private ApiFactory api = null!;

    public async Task InitializeAsync() =>
        api = new ApiFactory(await SharedPostgres.CreateDatabaseAsync(), new Dictionary<string, string?> { ["LOGIN_ATTEMPTS_PER_MINUTE"] = "3" }).Start();

    public async Task DisposeAsync() => await api.DisposeAsync();

    [Fact]
    public async Task Wrong_current_passwords_lock_the_change_with_429_and_retry_after_for_that_user_only()
    {
        using var user = await api.NewUserClientAsync("pw-guessed");
        using var other = await api.NewUserClientAsync("pw-other");
        for (var i = 0; i < 3; i++)
        {
            var wrong = await user.PutAsJsonAsync("/api/v1/users/me/password", new { current_password = $"guess-{i}-xyz", new_password = "a-new-password-1" });
            Assert.Equal(HttpStatusCode.BadRequest, wrong.StatusCode);
        }

        var limited = await user.PutAsJsonAsync("/api/v1/users/me/password", new { current_password = "user-password-123", new_password = "a-new-password-1" });
        var problem = await limited.AssertProblemAsync(HttpStatusCode.TooManyRequests);
        Assert.Equal("Too many password attempts.", problem.GetProperty("title").GetString());
        Assert.True(limited.Headers.RetryAfter?.Delta > TimeSpan.Zero);

        var changed = await other.PutAsJsonAsync("/api/v1/users/me/password", new { current_password = "user-password-123", new_password = "a-new-password-1" });
        Assert.Equal(HttpStatusCode.NoContent, changed.StatusCode);

        using var admin = await api.AdminClientAsync();
        var audit = await (await admin.GetAsync("/api/v1/audit?action=auth.password_change_limited")).AssertJsonAsync<AuditPage>(HttpStatusCode.OK);
        Assert.Single(audit.Items);
    }
}
