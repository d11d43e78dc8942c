using Npgsql;
using StreamSpace.Api.Features.Audit;

namespace StreamSpace.Api.Features.Sessions;

/// <summary>What deleting a user needs of sessions: stopping all of theirs, in the deletion's transaction.</summary>
public interface IUserSessions
{
    /// <summary>Returns the agents whose stop commands to deliver after the commit.</summary>
    Task<IReadOnlyList<string>> StopAllAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, Actor actor, Guid userId,
        CancellationToken cancellationToken);
}

public sealed class UserSessions : IUserSessions
{
    public Task<IReadOnlyList<string>> StopAllAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, Actor actor, Guid userId,
        CancellationToken cancellationToken) =>
        SessionStore.StopAllOfUserAsync(connection, transaction, actor, userId, cancellationToken);
}
