namespace StreamSpace.Api.Features.Users;

/// <summary>
/// Who an OpenID provider says signed in, read from an ID token the API has validated. <paramref name="Role"/> is
/// already mapped from the groups claim (OIDC_ADMIN_GROUPS); null when no mapping is configured, so the role stays
/// what an admin made it (a new user is a plain user).
/// </summary>
public sealed record ProviderIdentity(string Issuer, string Subject, string Username, string? DisplayName, string? Email,
    IReadOnlyList<string> Groups, string? Role);

public enum ProviderSignInResult
{
    SignedIn,
    /// <summary>A new identity's username belongs to another account (a local one, or another identity's).</summary>
    UsernameTaken,
    Disabled,
}

/// <summary>What signing in through an OpenID provider needs of users: find or create the user linked to an identity.</summary>
public interface IProviderUsers
{
    /// <summary>
    /// The user linked to (issuer, subject): created at the first sign-in, otherwise brought up to date with the
    /// identity's display name, email, groups and role. A disabled user is left as it is.
    /// </summary>
    Task<(ProviderSignInResult Result, UserAccount? User)> SignInAsync(ProviderIdentity identity, CancellationToken cancellationToken);
}
