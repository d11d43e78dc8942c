using System.Security.Claims;

namespace StreamSpace.Web.Features.Auth;

/// <summary>The claims the web's auth cookie carries: the same names as in the API's JWT.</summary>
public static class StreamSpaceClaims
{
    public const string Subject = "sub";
    public const string Name = "name";
    public const string Role = "role";

    public const string AdminRole = "admin";

    /// <summary>The name the API's JWT is stored under in the auth cookie's properties.</summary>
    public const string AccessTokenName = "access_token";
}

/// <summary>Reads the signed-in user from a principal, e.g. <c>context.User</c> in an AuthorizeView.</summary>
public static class CurrentUserExtensions
{
    public static Guid? UserId(this ClaimsPrincipal user) =>
        Guid.TryParse(user.FindFirst(StreamSpaceClaims.Subject)?.Value, out var id) ? id : null;

    public static string Username(this ClaimsPrincipal user) => user.FindFirst(StreamSpaceClaims.Name)?.Value ?? "";

    public static string Role(this ClaimsPrincipal user) => user.FindFirst(StreamSpaceClaims.Role)?.Value ?? "";

    public static bool IsAdmin(this ClaimsPrincipal user) => user.IsInRole(StreamSpaceClaims.AdminRole);
}
