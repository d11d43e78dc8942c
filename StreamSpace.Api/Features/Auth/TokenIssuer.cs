using System.Globalization;
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

    /// <summary>
    /// A token for the user at <paramref name="tokenVersion"/>. <paramref name="signedInAt"/> is when the user gave their
    /// password (kept across refreshes); the token never outlives it by more than SESSION_MAX_LIFETIME.
    /// </summary>
    public IssuedToken Issue(Guid userId, string username, string role, int tokenVersion, DateTimeOffset signedInAt)
    {
        var now = time.GetUtcNow();
        var expires = Min(now + settings.JwtLifetime, signedInAt + settings.SessionMaxLifetime);
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
                new Claim(ClaimNames.TokenId, Guid.NewGuid().ToString()),
                new Claim(ClaimNames.TokenVersion, tokenVersion.ToString(CultureInfo.InvariantCulture), ClaimValueTypes.Integer32),
                new Claim(ClaimNames.AuthTime, signedInAt.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture), ClaimValueTypes.Integer64),
            ]),
            SigningCredentials = new SigningCredentials(key, SecurityAlgorithms.HmacSha256),
        });
        return new IssuedToken(token, DateTimeOffset.FromUnixTimeSeconds(expires.ToUnixTimeSeconds()));
    }

    /// <summary>
    /// How tokens are validated. Lifetimes are checked against the API's <see cref="TimeProvider"/> (not the machine
    /// clock), so that issuing and validating agree, and a test can move time for both.
    /// </summary>
    public static TokenValidationParameters ValidationParameters(ApiSettings settings, TimeProvider time) => new()
    {
        ValidIssuer = Issuer,
        ValidAudience = Audience,
        IssuerSigningKey = SigningKey(settings),
        ValidAlgorithms = [SecurityAlgorithms.HmacSha256],
        NameClaimType = ClaimNames.Name,
        RoleClaimType = ClaimNames.Role,
        RequireExpirationTime = true,
        LifetimeValidator = (notBefore, expires, _, _) =>
        {
            var now = time.GetUtcNow().UtcDateTime;
            return expires is { } e && e + ClockSkew > now && (notBefore is not { } n || n - ClockSkew <= now);
        },
    };

    private static DateTimeOffset Min(DateTimeOffset a, DateTimeOffset b) => a < b ? a : b;

    private static SymmetricSecurityKey SigningKey(ApiSettings settings) => new(Encoding.UTF8.GetBytes(settings.JwtSecret));
}
