using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;

namespace StreamSpace.Tests.Infrastructure;

/// <summary>
/// The real API on Kestrel (real HTTP and WebSockets on a loopback port) against a real PostgreSQL database.
/// Settings arrive the way the process gets them in production: as configuration keys named like the env vars.
/// </summary>
public sealed class ApiFactory(string connectionString, IReadOnlyDictionary<string, string?>? settings = null,
    Action<Microsoft.Extensions.DependencyInjection.IServiceCollection>? configureServices = null) : WebApplicationFactory<StreamSpace.Api.ApiSettings>
{
    public const string JwtSecret = "test-secret-that-is-long-enough-for-hs256-signing!";
    public const string AdminUsername = "admin";
    public const string AdminPassword = "admin-password-for-tests";

    public string ConnectionString => connectionString;

    public Uri BaseAddress => ClientOptions.BaseAddress;

    /// <summary>The agent hub's URL, as agents are configured with it.</summary>
    public Uri AgentHubUrl => new UriBuilder(BaseAddress) { Scheme = "ws", Path = "/agent/ws" }.Uri;

    public static Dictionary<string, string?> DefaultSettings(string connectionString) => new()
    {
        ["ConnectionStrings:streamspace"] = connectionString,
        ["JWT_SECRET"] = JwtSecret,
        ["ADMIN_USERNAME"] = AdminUsername,
        ["ADMIN_PASSWORD"] = AdminPassword,
        // Every test client connects from loopback: the failure limits have tests of their own.
        ["LOGIN_ATTEMPTS_PER_MINUTE"] = "1000",
        ["LOGIN_FAILURES_PER_ADDRESS"] = "1000",
        ["LOGIN_FAILURES_PER_USERNAME"] = "1000",
        ["AGENT_AUTH_FAILURES_PER_MINUTE"] = "1000",
        ["AGENT_MISSED_HEARTBEATS"] = "3",
        // Several APIs run side by side in one test run: each takes a free port for its agents' data connections.
        ["DATA_PORT"] = "0",
    };

    /// <summary>Starts Kestrel (on a free port unless one is given) and waits until the API has migrated and serves.</summary>
    public ApiFactory Start(int port = 0)
    {
        UseKestrel(port);
        StartServer();
        return this;
    }

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        var effective = DefaultSettings(connectionString);
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            effective[key] = value;
        }

        foreach (var (key, value) in effective)
        {
            builder.UseSetting(key, value);
        }

        builder.UseEnvironment("Testing");
        if (configureServices is not null)
        {
            builder.ConfigureServices(configureServices);
        }
    }

    public async Task<HttpClient> ClientForAsync(string username, string password)
    {
        var client = CreateClient();
        var login = await client.PostAsJsonAsync("/api/v1/auth/login", new { username, password });
        login.EnsureSuccessStatusCode();
        var body = await login.Content.ReadFromJsonAsync<JsonElement>();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", body.GetProperty("token").GetString());
        return client;
    }

    public Task<HttpClient> AdminClientAsync() => ClientForAsync(AdminUsername, AdminPassword);

    /// <summary>Creates a plain user through the admin API and returns a client signed in as that user.</summary>
    public async Task<HttpClient> NewUserClientAsync(string? username = null, string role = "user")
    {
        username ??= "user-" + Guid.NewGuid().ToString("N")[..8];
        const string password = "user-password-123";
        using var admin = await AdminClientAsync();
        var created = await admin.PostAsJsonAsync("/api/v1/users", new { username, password, role });
        created.EnsureSuccessStatusCode();
        return await ClientForAsync(username, password);
    }
}

/// <summary>One API and one fresh database shared by the tests of a class.</summary>
public sealed class ApiFixture : IAsyncLifetime
{
    private ApiFactory? factory;

    public ApiFactory Api => factory ?? throw new InvalidOperationException("The fixture has not started.");

    public async Task InitializeAsync() => factory = new ApiFactory(await SharedPostgres.CreateDatabaseAsync()).Start();

    public async Task DisposeAsync()
    {
        if (factory is not null)
        {
            await factory.DisposeAsync();
        }
    }
}
