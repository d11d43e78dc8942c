using Npgsql;
using StreamSpace.Api.Features.Users;

namespace StreamSpace.Api.Features.Auth;

/// <summary>Signing in's side of a change to a user: their tokens end, and the token check re-reads the user.</summary>
public sealed class UserAccessChanges(ActiveUserCheck activeUsers) : IUserAccessChanges
{
    public Task EndTokensAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, Guid userId, CancellationToken cancellationToken) =>
        SignIns.BumpTokenVersionAsync(connection, transaction, userId, cancellationToken);

    public Task NotifyAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, Guid userId, CancellationToken cancellationToken) =>
        ActiveUserCheck.NotifyAsync(connection, transaction, userId, cancellationToken);

    public void Forget(Guid userId) => activeUsers.Forget(userId);
}
