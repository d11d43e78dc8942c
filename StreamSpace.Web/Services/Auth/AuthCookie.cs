using System.Security.Claims;
using StreamSpace.Contracts.Api;

namespace StreamSpace.Web.Services.Auth;

/// <summary>The web's auth cookie: it carries the API's claims (<see cref="ClaimNames"/>) and the API's token.</summary>
public static class AuthCookie
{
    /// <summary>The name the API's JWT is stored under in the auth cookie's properties.</summary>
    public const string AccessTokenName = "access_token";
}

/// <summary>Reads the signed-in user from a principal, e.g. <c>context.User</c> in an AuthorizeView.</summary>
public static class CurrentUserExtensions
{
    public static string Username(this ClaimsPrincipal user) => user.FindFirst(ClaimNames.Name)?.Value ?? "";

    public static string Role(this ClaimsPrincipal user) => user.FindFirst(ClaimNames.Role)?.Value ?? "";
}
