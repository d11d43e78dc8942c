using System.Security.Claims;

namespace StreamSpace.Api.Features.Auth;

public static class ClaimsPrincipalExtensions
{
    /// <summary>The signed-in user's id; only called on endpoints that require authentication.</summary>
    public static Guid RequiredUserId(this ClaimsPrincipal user) =>
        user.UserId() ?? throw new InvalidOperationException("The endpoint requires an authenticated user.");

    /// <summary>The token's version; tokens from before versions existed count as 0.</summary>
    public static int TokenVersion(this ClaimsPrincipal user) =>
        int.TryParse(user.FindFirst(ClaimNames.TokenVersion)?.Value, out var version) ? version : 0;

    public static Guid? TokenId(this ClaimsPrincipal user) =>
        Guid.TryParse(user.FindFirst(ClaimNames.TokenId)?.Value, out var id) ? id : null;

    /// <summary>When the token's user signed in; null for a token from before auth_time existed.</summary>
    public static DateTimeOffset? AuthTime(this ClaimsPrincipal user) => UnixTime(user, ClaimNames.AuthTime);

    public static DateTimeOffset? ExpiresAt(this ClaimsPrincipal user) => UnixTime(user, "exp");

    public static DateTimeOffset? IssuedAt(this ClaimsPrincipal user) => UnixTime(user, "iat");

    private static DateTimeOffset? UnixTime(ClaimsPrincipal user, string claim) =>
        long.TryParse(user.FindFirst(claim)?.Value, out var seconds) ? DateTimeOffset.FromUnixTimeSeconds(seconds) : null;
}
