namespace StreamSpace.Contracts.Api;

/// <summary>
/// A user as the API shows it: never the password hash. <paramref name="Source"/> is <c>local</c> (a password) or
/// <c>oidc</c> (created at a first sign-in through the OpenID provider). <paramref name="ProviderGroups"/> are the
/// provider's groups claim at the user's last sign-in through it.
/// </summary>
public sealed record UserResponse(Guid Id, string Username, string Role, bool Disabled, DateTimeOffset CreatedAt,
    string Source = UserSources.Local, string? DisplayName = null, string? Email = null, IReadOnlyList<string>? ProviderGroups = null);

/// <summary>Where a user's account came from.</summary>
public static class UserSources
{
    public const string Local = "local";
    public const string Oidc = "oidc";
}

public sealed record CreateUserRequest(string Username, string Password, string Role = UserRoles.User);

/// <summary><c>PATCH /api/v1/users/{id}</c>: only the fields that are set change; a password is an admin's reset.</summary>
public sealed record UpdateUserRequest(string? Role = null, bool? Disabled = null, string? Password = null);

/// <summary><c>POST /api/v1/users/me/password</c>.</summary>
public sealed record ChangePasswordRequest(string CurrentPassword, string NewPassword);
