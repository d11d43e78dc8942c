namespace StreamSpace.Api.Features.Users;

/// <summary>A row of <c>users</c>.</summary>
public sealed class UserAccount
{
    public Guid Id { get; init; }
    public string Username { get; init; } = "";
    public string PasswordHash { get; init; } = "";
    public string Role { get; init; } = UserRoles.User;
    public bool Disabled { get; init; }
    /// <summary>Carried in every token; a bump ends every token issued before.</summary>
    public int TokenVersion { get; init; }
    public DateTime CreatedAt { get; init; }
    public DateTime UpdatedAt { get; init; }
    /// <summary>The OpenID provider the user signs in through, with <see cref="OidcSubject"/>; null for a local user.</summary>
    public string? OidcIssuer { get; init; }
    public string? OidcSubject { get; init; }
    public string? DisplayName { get; init; }
    public string? Email { get; init; }
    /// <summary>The provider's groups claim at the user's last sign-in through it.</summary>
    public string[] ProviderGroups { get; init; } = [];

    public UserResponse ToResponse() => new(Id, Username, Role, Disabled, new DateTimeOffset(CreatedAt, TimeSpan.Zero),
        OidcIssuer is null ? UserSources.Local : UserSources.Oidc, DisplayName, Email, ProviderGroups);
}

public static class PasswordRules
{
    public const int MinimumLength = 8;
    public const int MaximumLength = 256;
}

public static class UsernameRules
{
    public const int MaximumLength = 64;
    public const string Pattern = "^[A-Za-z0-9][A-Za-z0-9._@-]*$";
}
