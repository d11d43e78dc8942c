using System.Security.Claims;

namespace StreamSpace.Api.Features.Auth;

public static class Role
{
    public const string Admin = "admin";
    public const string User = "user";

    public static bool IsValid(string? role) => role is Admin or User;
}

public static class ClaimNames
{
    public const string Subject = "sub";
    public const string Name = "name";
    public const string Role = "role";
}

public static class ClaimsPrincipalExtensions
{
    public static Guid? UserId(this ClaimsPrincipal user) =>
        Guid.TryParse(user.FindFirst(ClaimNames.Subject)?.Value, out var id) ? id : null;

    /// <summary>The signed-in user's id; only called on endpoints that require authentication.</summary>
    public static Guid RequiredUserId(this ClaimsPrincipal user) =>
        user.UserId() ?? throw new InvalidOperationException("The endpoint requires an authenticated user.");

    public static bool IsAdmin(this ClaimsPrincipal user) => user.IsInRole(Role.Admin);
}
