using System.Net;
using System.Net.Http.Json;
using StreamSpace.Contracts.Api;
using StreamSpace.Settings;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Api.Features.Users;

public sealed class AdminBootstrapTests
{
    [Fact]
    public async Task The_admin_password_resyncs_from_the_environment_at_start_and_the_change_is_audited()
    {
        var database = await SharedPostgres.CreateDatabaseAsync();
        await using (var first = new ApiFactory(database).Start())
        {
            using var client = await first.AdminClientAsync();
        }

        const string rotated = "the-rotated-admin-password";
        await using var second = new ApiFactory(database, new Dictionary<string, string?> { ["ADMIN_PASSWORD"] = rotated }).Start();
        using var anonymous = second.CreateClient();

        var old = await anonymous.PostAsJsonAsync("/api/v1/auth/login", new { username = "admin", password = ApiFactory.AdminPassword });
        Assert.Equal(HttpStatusCode.Unauthorized, old.StatusCode);
        using var admin = await second.ClientForAsync("admin", rotated);

        var audit = await (await admin.GetAsync("/api/v1/audit?action=user.updated&actor=system")).AssertJsonAsync<AuditPage>(HttpStatusCode.OK);
        Assert.True(Assert.Single(audit.Items).Details.GetProperty("password_changed").GetBoolean());
    }

    [Fact]
    public async Task Without_admin_password_and_without_an_admin_the_api_refuses_to_start_with_one_line()
    {
        var environment = new Dictionary<string, string>
        {
            ["ConnectionStrings__streamspace"] = await SharedPostgres.CreateDatabaseAsync(),
            ["JWT_SECRET"] = ApiFactory.JwtSecret,
            ["ASPNETCORE_URLS"] = $"http://127.0.0.1:{PostgresServer.FreePort()}",
        };

        var result = await ProcessRunner.RunAsync("dotnet", [Repository.BuiltAssembly("StreamSpace.Api")], environment);

        Assert.Equal(StartupGuard.InvalidSettingExitCode, result.ExitCode);
        var line = Assert.Single(result.StandardError.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("error: ADMIN_PASSWORD is not set and the database has no admin", line);
    }

    [Fact]
    public async Task Without_admin_password_an_existing_admin_keeps_working()
    {
        var database = await SharedPostgres.CreateDatabaseAsync();
        await using (var first = new ApiFactory(database).Start())
        {
            using var _ = await first.AdminClientAsync();
        }

        await using var second = new ApiFactory(database, new Dictionary<string, string?> { ["ADMIN_PASSWORD"] = null }).Start();
        using var admin = await second.AdminClientAsync();
        Assert.Equal(HttpStatusCode.OK, (await admin.GetAsync("/api/v1/users")).StatusCode);
    }
}
