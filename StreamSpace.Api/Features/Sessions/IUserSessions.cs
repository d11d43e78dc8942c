using Npgsql;
using StreamSpace.Api.Features.Audit;

namespace StreamSpace.Api.Features.Sessions;

/// <summary>What deleting a user needs of sessions: stopping all of theirs in the deletion's transaction, then telling their agents.</summary>
public interface IUserSessions
{
    /// <summary>Returns the agents whose stop commands <see cref="DeliverAsync"/> sends after the commit.</summary>
    Task<IReadOnlyList<string>> StopAllAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, Actor actor, Guid userId,
        CancellationToken cancellationToken);

    /// <inheritdoc cref="ISessionAgents.DeliverAsync"/>
    Task DeliverAsync(IReadOnlyList<string> agentIds);
}
