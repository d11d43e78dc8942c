using System.Net;
using System.Net.Http.Headers;
using System.Security.Claims;
using System.Text;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using StreamSpace.Api.Features.Auth;
using StreamSpace.Tests.Api.Features.Sessions;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Api.Features.Auth;

public sealed class JwtTests(ApiFixture fixture) : IClassFixture<ApiFixture>
{
    [Fact]
    public async Task A_valid_token_is_accepted()
    {
        var adminId = await AdminIdAsync();
        Assert.Equal(HttpStatusCode.OK, await MeWithAsync(Token(adminId)));
    }

    [Fact]
    public async Task A_tampered_token_is_rejected()
    {
        var adminId = await AdminIdAsync();
        var parts = Token(adminId, role: "user").Split('.');
        // Swap the payload for one that claims the admin role, keeping the old signature.
        var forged = Token(adminId, role: "admin").Split('.')[1];
        Assert.Equal(HttpStatusCode.Unauthorized, await MeWithAsync($"{parts[0]}.{forged}.{parts[2]}"));
    }

    [Fact]
    public async Task An_expired_token_is_rejected_beyond_the_30_second_clock_skew()
    {
        var adminId = await AdminIdAsync();
        var expiredWithinSkew = Token(adminId, expires: DateTime.UtcNow.AddSeconds(-10));
        var expiredBeyondSkew = Token(adminId, expires: DateTime.UtcNow.AddMinutes(-2));

        Assert.Equal(HttpStatusCode.OK, await MeWithAsync(expiredWithinSkew));
        Assert.Equal(HttpStatusCode.Unauthorized, await MeWithAsync(expiredBeyondSkew));
    }

    [Fact]
    public async Task A_token_from_another_issuer_or_for_another_audience_is_rejected()
    {
        var adminId = await AdminIdAsync();
        Assert.Equal(HttpStatusCode.Unauthorized, await MeWithAsync(Token(adminId, issuer: "someone-else")));
        Assert.Equal(HttpStatusCode.Unauthorized, await MeWithAsync(Token(adminId, audience: "another-api")));
    }

    [Fact]
    public async Task A_token_signed_with_another_secret_is_rejected()
    {
        var adminId = await AdminIdAsync();
        Assert.Equal(HttpStatusCode.Unauthorized, await MeWithAsync(Token(adminId, secret: "a-different-secret-that-is-also-long-enough!!")));
    }

    private async Task<string> AdminIdAsync()
    {
        using var admin = await fixture.Api.AdminClientAsync();
        return (await admin.UserIdAsync()).ToString();
    }

    private async Task<HttpStatusCode> MeWithAsync(string token)
    {
        using var client = fixture.Api.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return (await client.GetAsync("/api/v1/auth/me")).StatusCode;
    }

    private static string Token(string userId, string role = "admin", DateTime? expires = null, string issuer = TokenIssuer.Issuer,
        string audience = TokenIssuer.Audience, string secret = ApiFactory.JwtSecret)
    {
        var expiry = expires ?? DateTime.UtcNow.AddMinutes(10);
        return new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Issuer = issuer,
            Audience = audience,
            IssuedAt = expiry.AddMinutes(-20),
            NotBefore = expiry.AddMinutes(-20),
            Expires = expiry,
            Subject = new ClaimsIdentity([new Claim("sub", userId), new Claim("name", "admin"), new Claim("role", role)]),
            SigningCredentials = new SigningCredentials(new SymmetricSecurityKey(Encoding.UTF8.GetBytes(secret)), SecurityAlgorithms.HmacSha256),
        });
    }
}
