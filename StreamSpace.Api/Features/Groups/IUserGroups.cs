using Npgsql;

namespace StreamSpace.Api.Features.Groups;

/// <summary>
/// What other features need of groups: which templates a user may launch, the user's limits, and (for sign-in through
/// an identity provider) setting the groups the provider says the user is in. Every answer is read from the database
/// when asked, so a membership change applies to the next request.
/// </summary>
public interface IUserGroups
{
    /// <summary>
    /// The templates the user may not see or launch: those limited to groups the user is in none of. None for an admin.
    /// </summary>
    Task<IReadOnlySet<string>> ClosedTemplatesAsync(Guid userId, CancellationToken cancellationToken);

    /// <summary>Null when the user may launch the template; otherwise why not, naming the groups it is limited to.</summary>
    Task<string?> LaunchRefusalAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, Guid userId, string template,
        CancellationToken cancellationToken);

    /// <summary>The most generous of each quota the user's groups set.</summary>
    Task<UserLimits> LimitsAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, Guid userId, CancellationToken cancellationToken);

    /// <summary>The names of the groups each of <paramref name="userIds"/> is in now; a user in none is absent.</summary>
    Task<IReadOnlyDictionary<Guid, IReadOnlyList<string>>> GroupNamesAsync(IReadOnlyCollection<Guid> userIds, CancellationToken cancellationToken);

    /// <summary>
    /// Makes the user a member of exactly those of <paramref name="groupNames"/> (matched without case) that exist and are
    /// provider-managed, and of no other group through the provider. Memberships an admin made by hand stay as they are.
    /// </summary>
    Task SetProviderGroupsAsync(Guid userId, IReadOnlyCollection<string> groupNames, CancellationToken cancellationToken);
}
