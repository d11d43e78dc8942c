namespace StreamSpace.Contracts.Api;

/// <summary>A user as the API shows it: never the password hash.</summary>
public sealed record UserResponse(Guid Id, string Username, string Role, bool Disabled, DateTimeOffset CreatedAt);

public sealed record CreateUserRequest(string Username, string Password, string Role = UserRoles.User);

/// <summary><c>PATCH /api/v1/users/{id}</c>: only the fields that are set change; a password is an admin's reset.</summary>
public sealed record UpdateUserRequest(string? Role = null, bool? Disabled = null, string? Password = null);

/// <summary><c>POST /api/v1/users/me/password</c>.</summary>
public sealed record ChangePasswordRequest(string CurrentPassword, string NewPassword);
