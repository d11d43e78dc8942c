using StreamSpace.Settings;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Api;

/// <summary>Runs the built API as a process, the way an operator meets a misconfiguration.</summary>
public sealed class ApiSettingsTests
{
    private static readonly Dictionary<string, string> Valid = new()
    {
        ["ConnectionStrings__streamspace"] = "Host=127.0.0.1;Port=1;Username=postgres;Database=streamspace",
        ["JWT_SECRET"] = ApiFactory.JwtSecret,
        ["ADMIN_PASSWORD"] = "a-secret-admin-password",
    };

    [Theory]
    [InlineData("JWT_SECRET", null, "JWT_SECRET is required")]
    [InlineData("JWT_SECRET", "too-short", "JWT_SECRET is too short")]
    [InlineData("ConnectionStrings__streamspace", null, "ConnectionStrings__streamspace is required")]
    [InlineData("JWT_LIFETIME", "forever", "JWT_LIFETIME has an invalid value 'forever'")]
    [InlineData("SESSION_MAX_LIFETIME", "30s", "SESSION_MAX_LIFETIME must be between 1m and 365d")]
    [InlineData("UPLOAD_MAX_BYTES", "1GiB", "UPLOAD_MAX_BYTES has an invalid value '1GiB'")]
    [InlineData("UPLOAD_MAX_BYTES", "0", "UPLOAD_MAX_BYTES must be at least 1 byte")]
    [InlineData("OIDC_ISSUER", "http://id.example.com", "OIDC_ISSUER must be an https:// URL")]
    [InlineData("OIDC_ISSUER", "https://id.example.com", "OIDC_CLIENT_ID is required with OIDC_ISSUER")]
    [InlineData("LOCAL_LOGIN", "false", "LOCAL_LOGIN can be false only with OIDC_ISSUER set")]
    public async Task A_missing_or_invalid_setting_exits_with_one_line_that_names_it(string setting, string? value, string expected)
    {
        var result = await StartupErrors.RunWithSettingAsync("StreamSpace.Api", Valid, setting, value);
        StartupErrors.AssertOneLine(result, expected);
    }

    [Fact]
    public async Task Secret_values_are_never_echoed_in_the_error()
    {
        var environment = new Dictionary<string, string>(Valid) { ["JWT_SECRET"] = "short-secret-value" };
        var result = await ProcessRunner.RunAsync("dotnet", [Repository.BuiltAssembly("StreamSpace.Api")], environment);

        Assert.Equal(StartupGuard.InvalidSettingExitCode, result.ExitCode);
        Assert.DoesNotContain("short-secret-value", result.StandardError + result.StandardOutput);
    }
}
