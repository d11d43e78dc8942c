using Npgsql;

namespace StreamSpace.Api.Features.Users;

/// <summary>
/// Told of each change to what a user may do (their password, role, disabled flag, or the user deleted), so that
/// their tokens and every API instance's cached view of them follow. Signing in implements it.
/// </summary>
public interface IUserAccessChanges
{
    /// <summary>In the change's transaction: every token issued to the user so far stops working once it commits.</summary>
    Task EndTokensAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, Guid userId, CancellationToken cancellationToken);

    /// <summary>In the change's transaction: every API instance re-reads the user once it commits.</summary>
    Task NotifyAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, Guid userId, CancellationToken cancellationToken);

    /// <summary>After the commit: this instance re-reads the user at once.</summary>
    void Forget(Guid userId);
}
