using StreamSpace.Tests.Infrastructure;
using StreamSpace.Web;

namespace StreamSpace.Tests.Web;

/// <summary>The web's own settings: the built web process stops with one line naming a missing or invalid one.</summary>
public sealed class WebSettingsTests
{
    private static readonly Dictionary<string, string> Valid = new()
    {
        ["ConnectionStrings__streamspace"] = "Host=127.0.0.1;Port=1;Username=postgres;Database=streamspace",
    };

    [Theory]
    [InlineData("ConnectionStrings__streamspace", null, "ConnectionStrings__streamspace is required")]
    [InlineData("PUBLIC_URL", "ftp://example.com", "PUBLIC_URL has an invalid value 'ftp://example.com'")]
    [InlineData("OIDC_ISSUER", "id.example.com", "OIDC_ISSUER has an invalid value 'id.example.com'")]
    [InlineData("OIDC_CLIENT_ID", "streamspace", "OIDC_ISSUER is required with OIDC_CLIENT_ID")]
    public async Task A_missing_or_invalid_setting_exits_with_one_line_that_names_it(string setting, string? value, string expected)
    {
        var result = await StartupErrors.RunWithSettingAsync("StreamSpace.Web", Valid, setting, value);
        StartupErrors.AssertOneLine(result, expected);
    }

    [Theory]
    [InlineData("profile email", "OIDC_SCOPES")]
    [InlineData("openid", null)]
    public void Single_sign_on_needs_the_openid_scope(string scopes, string? refused)
    {
        var settings = new WebSettings { OidcIssuer = "https://id.example.com", OidcClientId = "streamspace", OidcScopes = scopes };
        var error = Record.Exception(settings.Validate);
        Assert.Equal(refused, (error as StreamSpace.Settings.InvalidSettingException)?.Setting);
    }

    [Theory]
    [InlineData("https://streamspace.example.com", true)]
    [InlineData("HTTPS://streamspace.example.com/", true)]
    [InlineData("http://streamspace.example.com", false)]
    [InlineData("", false)]
    public void The_auth_cookie_is_always_secure_when_users_reach_the_site_over_https(string publicUrl, bool secure) =>
        Assert.Equal(secure, new WebSettings { PublicUrl = publicUrl }.SecureCookies);
}
