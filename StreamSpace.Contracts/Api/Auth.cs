using System.Security.Claims;

namespace StreamSpace.Contracts.Api;

/// <summary>The roles a user may have: the API's tokens and the web's cookie carry them under the claim <c>role</c>.</summary>
public static class UserRoles
{
    public const string Admin = "admin";
    public const string User = "user";

    public static bool IsValid(string? role) => role is Admin or User;
}

/// <summary>The claims of the API's tokens, which the web's auth cookie carries under the same names.</summary>
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
    /// <summary>On a personal API token's principal: the token's id (the <c>api_tokens</c> row).</summary>
    public const string ApiTokenId = "api_token";
    /// <summary>On a personal API token's principal: one claim per scope (<see cref="ApiTokenScopes"/>).</summary>
    public const string Scope = "scope";
}

/// <summary>Who a principal is, read from <see cref="ClaimNames"/>: in the API from its token, in the web from its cookie.</summary>
public static class UserClaims
{
    public static Guid? UserId(this ClaimsPrincipal user) =>
        Guid.TryParse(user.FindFirst(ClaimNames.Subject)?.Value, out var id) ? id : null;

    /// <summary>Whether the principal acts as an admin: an admin's sign-in, or an admin's personal API token with the <c>admin</c> scope.</summary>
    /// <remarks>An admin's <c>read</c> or <c>sessions</c> token acts as a plain user: it reaches only the admin's own sessions.</remarks>
    public static bool IsAdmin(this ClaimsPrincipal user) =>
        user.IsInRole(UserRoles.Admin) && (!user.IsApiToken() || user.HasClaim(ClaimNames.Scope, ApiTokenScopes.Admin));

    /// <summary>Whether the principal is a personal API token rather than a sign-in.</summary>
    public static bool IsApiToken(this ClaimsPrincipal user) => user.FindFirst(ClaimNames.ApiTokenId) is not null;
}

/// <summary>The body of <c>POST /api/v1/auth/login</c>.</summary>
public sealed record LoginRequest(string Username, string Password);

/// <summary>The answer to a successful login or refresh.</summary>
public sealed record LoginResponse(string Token, DateTimeOffset ExpiresAt, UserSummary User);

/// <summary>Who signed in.</summary>
public sealed record UserSummary(Guid Id, string Username, string Role);

/// <summary>
/// The body of <c>POST /api/v1/auth/oidc</c>: the ID token the web UI received from the OpenID provider at the end
/// of an authorization code flow. The API validates it itself (signature from the provider's keys, issuer, audience,
/// expiry, a single-use nonce) before it signs anyone in.
/// </summary>
public sealed record OidcSignInRequest(string IdToken);
