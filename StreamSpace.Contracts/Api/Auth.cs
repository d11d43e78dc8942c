namespace StreamSpace.Contracts.Api;

/// <summary>The roles a user may have: the API's tokens and the web's cookie carry them under the claim <c>role</c>.</summary>
public static class UserRoles
{
    public const string Admin = "admin";
    public const string User = "user";

    public static bool IsValid(string? role) => role is Admin or User;
}

/// <summary>The body of <c>POST /api/v1/auth/login</c>.</summary>
public sealed record LoginRequest(string Username, string Password);

/// <summary>The answer to a successful login or refresh.</summary>
public sealed record LoginResponse(string Token, DateTimeOffset ExpiresAt, UserSummary User);

/// <summary>Who signed in.</summary>
public sealed record UserSummary(Guid Id, string Username, string Role);
