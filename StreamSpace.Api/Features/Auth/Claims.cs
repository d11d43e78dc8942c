using System.Security.Claims;

namespace StreamSpace.Api.Features.Auth;

public static class ClaimNames
{
    public const string Subject = "sub";
    public const string Name = "name";
    public const string Role = "role";
    /// <summary>The token's own id, for ending this one token (logout).</summary>
    public const string TokenId = "jti";
    /// <summary>The user's token version when the token was issued; a bump ends every earlier token.</summary>
    public const string TokenVersion = "ver";
    /// <summary>When the user signed in with their password (unix seconds), carried unchanged through refreshes.</summary>
    public const string AuthTime = "auth_time";
}

public static class ClaimsPrincipalExtensions
{
    public static Guid? UserId(this ClaimsPrincipal user) =>
        Guid.TryParse(user.FindFirst(ClaimNames.Subject)?.Value, out var id) ? id : null;

    /// <summary>The signed-in user's id; only called on endpoints that require authentication.</summary>
    public static Guid RequiredUserId(this ClaimsPrincipal user) =>
        user.UserId() ?? throw new InvalidOperationException("The endpoint requires an authenticated user.");

    public static bool IsAdmin(this ClaimsPrincipal user) => user.IsInRole(UserRoles.Admin);

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
