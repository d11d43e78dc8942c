using StreamSpace.Api.Features.Audit;

namespace StreamSpace.Api.Features.Users;

/// <summary>What other features need of users (signing in, launching for a user, diagnostics): finding one, checking their password, and changing it.</summary>
public interface IUserAccounts
{
    Task<UserAccount?> FindByUsernameAsync(string username, CancellationToken cancellationToken);

    Task<UserAccount?> FindByIdAsync(Guid id, CancellationToken cancellationToken);

    /// <summary>False for a wrong password and for an unknown user (null), which costs as long to check.</summary>
    bool VerifyPassword(UserAccount? user, string password);

    /// <summary>Sets a new password, which ends every token issued to the user so far.</summary>
    Task ChangePasswordAsync(Actor actor, Guid id, string newPassword, CancellationToken cancellationToken);
}
