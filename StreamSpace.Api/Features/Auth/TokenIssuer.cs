using System.Security.Claims;
using System.Text;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace StreamSpace.Api.Features.Auth;

public sealed record IssuedToken(string Token, DateTimeOffset ExpiresAt);

/// <summary>Issues the API's JWTs and describes how they are validated: one place for both halves.</summary>
public sealed class TokenIssuer(ApiSettings settings, TimeProvider time)
{
    public const string Issuer = "streamspace";
    public const string Audience = "streamspace-api";
    public static readonly TimeSpan ClockSkew = TimeSpan.FromSeconds(30);

    private readonly SymmetricSecurityKey key = SigningKey(settings);
    private readonly JsonWebTokenHandler handler = new();

    public IssuedToken Issue(Guid userId, string username, string role)
    {
        var now = time.GetUtcNow();
        var expires = now + settings.JwtLifetime;
        var token = handler.CreateToken(new SecurityTokenDescriptor
        {
            Issuer = Issuer,
            Audience = Audience,
            IssuedAt = now.UtcDateTime,
            NotBefore = now.UtcDateTime,
            Expires = expires.UtcDateTime,
            Subject = new ClaimsIdentity(
            [
                new Claim(ClaimNames.Subject, userId.ToString()),
                new Claim(ClaimNames.Name, username),
                new Claim(ClaimNames.Role, role),
            ]),
            SigningCredentials = new SigningCredentials(key, SecurityAlgorithms.HmacSha256),
        });
        return new IssuedToken(token, DateTimeOffset.FromUnixTimeSeconds(expires.ToUnixTimeSeconds()));
    }

    public static TokenValidationParameters ValidationParameters(ApiSettings settings) => new()
    {
        ValidIssuer = Issuer,
        ValidAudience = Audience,
        IssuerSigningKey = SigningKey(settings),
        ValidAlgorithms = [SecurityAlgorithms.HmacSha256],
        ClockSkew = ClockSkew,
        NameClaimType = ClaimNames.Name,
        RoleClaimType = ClaimNames.Role,
        RequireExpirationTime = true,
    };

    private static SymmetricSecurityKey SigningKey(ApiSettings settings) => new(Encoding.UTF8.GetBytes(settings.JwtSecret));
}
