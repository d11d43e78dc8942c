using Dapper;
using Microsoft.AspNetCore.Identity;
using Npgsql;
using StreamSpace.Api.Features.Audit;
using StreamSpace.Api.Features.Sessions;
using StreamSpace.Api.Infrastructure;

namespace StreamSpace.Api.Features.Users;

/// <summary>The result of a change that may break a rule about users.</summary>
public enum UserChange
{
    Done,
    NotFound,
    DuplicateUsername,
    LastAdmin,
}

public static class UserChanges
{
    /// <summary>The answer to a change of user <paramref name="id"/> that was refused, or null when it was done.</summary>
    public static IResult? Refusal(this UserChange change, Guid id) => change switch
    {
        UserChange.NotFound => ApiProblem.NotFound($"No user has id {id}."),
        UserChange.LastAdmin => ApiProblem.Conflict(UserStore.LastAdminProblem),
        _ => null,
    };
}

/// <summary>Reads and changes users. Every change writes its audit row in the same transaction.</summary>
public sealed class UserStore(NpgsqlDataSource dataSource, IPasswordHasher<UserAccount> hasher, IUserAccessChanges access, IUserSessions sessions)
    : IUserAccounts, IProviderUsers
{
    // Serialises changes that could leave no active admin, so two concurrent demotions cannot both pass.
    private const long AdminChangeLockKey = 0x5354_524D_4144;

    private readonly Lazy<UserAccount> nobody = new(() =>
        new UserAccount { PasswordHash = hasher.HashPassword(new UserAccount(), Guid.NewGuid().ToString()) });

    public const string LastAdminProblem = "This is the last active admin; make another user admin first.";

    private const string Columns = "id, username, password_hash, role, disabled, token_version, created_at, updated_at, " +
        "oidc_issuer, oidc_subject, display_name, email, provider_groups";

    public async Task<UserAccount?> FindByUsernameAsync(string username, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return await connection.QuerySingleOrDefaultAsync<UserAccount>(new CommandDefinition(
            $"SELECT {Columns} FROM users WHERE lower(username) = lower(@username)", new { username }, cancellationToken: cancellationToken));
    }

    public async Task<UserAccount?> FindByIdAsync(Guid id, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return await connection.QuerySingleOrDefaultAsync<UserAccount>(new CommandDefinition(
            $"SELECT {Columns} FROM users WHERE id = @id", new { id }, cancellationToken: cancellationToken));
    }

    public async Task<IReadOnlyList<UserAccount>> ListAsync(CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return [.. await connection.QueryAsync<UserAccount>(new CommandDefinition(
            $"SELECT {Columns} FROM users ORDER BY lower(username)", cancellationToken: cancellationToken))];
    }

    public async Task<bool> AnyActiveAdminAsync(CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return await connection.ExecuteScalarAsync<bool>(new CommandDefinition(
            "SELECT EXISTS (SELECT 1 FROM users WHERE role = 'admin' AND NOT disabled)", cancellationToken: cancellationToken));
    }

    /// <summary>
    /// Checks a password. For an unknown user (null) it still verifies against a throwaway hash and answers false,
    /// so that a login for a missing account costs as long as a wrong password and reveals nothing.
    /// </summary>
    public bool VerifyPassword(UserAccount? user, string password)
    {
        var account = user ?? nobody.Value;
        var matches = hasher.VerifyHashedPassword(account, account.PasswordHash, password) != PasswordVerificationResult.Failed;
        return user is not null && matches;
    }

    public async Task<(UserChange Result, UserAccount? User)> CreateAsync(Actor actor, string username, string password, string role, CancellationToken cancellationToken)
    {
        var user = new UserAccount { Id = Guid.CreateVersion7(), Username = username, Role = role };
        user = new UserAccount { Id = user.Id, Username = username, Role = role, PasswordHash = hasher.HashPassword(user, password) };

        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        try
        {
            user = await connection.QuerySingleAsync<UserAccount>(new CommandDefinition(
                $"""
                INSERT INTO users (id, username, password_hash, role) VALUES (@Id, @Username, @PasswordHash, @Role)
                RETURNING {Columns}
                """, user, transaction, cancellationToken: cancellationToken));
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UniqueViolation)
        {
            return (UserChange.DuplicateUsername, null);
        }

        await connection.WriteAsync(actor, "user.created", "user", user.Id.ToString(), new { user.Username, user.Role }, transaction, cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return (UserChange.Done, user);
    }

    public async Task<(ProviderSignInResult Result, UserAccount? User)> SignInAsync(ProviderIdentity identity, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        // The admin-change lock, as every change of role takes it, so a sign-in that takes admin away cannot race another.
        await connection.ExecuteAsync(new CommandDefinition("SELECT pg_advisory_xact_lock(@AdminChangeLockKey)", new { AdminChangeLockKey }, transaction, cancellationToken: cancellationToken));
        var current = await connection.QuerySingleOrDefaultAsync<UserAccount>(new CommandDefinition(
            $"SELECT {Columns} FROM users WHERE oidc_issuer = @Issuer AND oidc_subject = @Subject FOR UPDATE",
            identity, transaction, cancellationToken: cancellationToken));
        var actor = new Actor(current?.Id, identity.Username);
        var groups = identity.Groups.ToArray();

        if (current is null)
        {
            UserAccount created;
            try
            {
                // No password: such a user signs in only through the provider (an empty hash never verifies).
                created = await connection.QuerySingleAsync<UserAccount>(new CommandDefinition(
                    $"""
                    INSERT INTO users (id, username, password_hash, role, oidc_issuer, oidc_subject, display_name, email, provider_groups)
                    VALUES (@id, @Username, '', @Role, @Issuer, @Subject, @DisplayName, @Email, @groups)
                    RETURNING {Columns}
                    """,
                    new { id = Guid.CreateVersion7(), identity.Username, Role = identity.Role ?? UserRoles.User, identity.Issuer, identity.Subject, identity.DisplayName, identity.Email, groups },
                    transaction, cancellationToken: cancellationToken));
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UniqueViolation && e.ConstraintName == "users_username_key")
            {
                return (ProviderSignInResult.UsernameTaken, null);
            }

            await connection.WriteAsync(actor with { Id = created.Id }, "user.created", "user", created.Id.ToString(),
                new { created.Username, created.Role, Source = UserSources.Oidc, identity.Issuer, Groups = groups }, transaction, cancellationToken);
            await transaction.CommitAsync(cancellationToken);
            return (ProviderSignInResult.SignedIn, created);
        }

        if (current.Disabled)
        {
            return (ProviderSignInResult.Disabled, current);
        }

        // The claim decides the role at each sign-in, except that it cannot take away the last active admin (as an
        // admin could not either): the site must keep someone who can manage it.
        var role = identity.Role ?? current.Role;
        var keptLastAdmin = current.Role == UserRoles.Admin && role == UserRoles.User
            && !await OtherActiveAdminExistsAsync(connection, transaction, current.Id, cancellationToken);
        if (keptLastAdmin)
        {
            role = UserRoles.Admin;
        }

        var roleChanged = role != current.Role;
        if (roleChanged)
        {
            // As for an admin's change of role: the user's other sign-ins end, so none keeps the old role.
            await access.EndTokensAsync(connection, transaction, current.Id, cancellationToken);
        }

        var updated = await connection.QuerySingleAsync<UserAccount>(new CommandDefinition(
            $"""
            UPDATE users SET role = @role, display_name = @DisplayName, email = @Email, provider_groups = @groups, updated_at = now()
            WHERE id = @Id
            RETURNING {Columns}
            """, new { role, identity.DisplayName, identity.Email, groups, current.Id }, transaction, cancellationToken: cancellationToken));
        if (roleChanged || keptLastAdmin || !current.ProviderGroups.SequenceEqual(groups))
        {
            await connection.WriteAsync(actor, "user.updated", "user", current.Id.ToString(),
                new { Role = roleChanged ? role : null, Source = UserSources.Oidc, Groups = groups, KeptLastAdmin = keptLastAdmin }, transaction, cancellationToken);
        }

        await transaction.CommitAsync(cancellationToken);
        if (roleChanged)
        {
            access.Forget(current.Id);
        }

        return (ProviderSignInResult.SignedIn, updated);
    }

    /// <summary>Applies the given changes; null leaves a field as it is.</summary>
    public async Task<(UserChange Result, UserAccount? User)> UpdateAsync(Actor actor, Guid id, string? role, bool? disabled, string? newPassword, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        var current = await LockForChangeAsync(connection, transaction, id, cancellationToken);
        if (current is null)
        {
            return (UserChange.NotFound, null);
        }

        var losesAdmin = current is { Role: UserRoles.Admin, Disabled: false } && (role is UserRoles.User || disabled is true);
        if (losesAdmin && !await OtherActiveAdminExistsAsync(connection, transaction, id, cancellationToken))
        {
            return (UserChange.LastAdmin, current);
        }

        // A new password, a disabled account or another role ends every token issued before (re-enabling the account
        // must not revive a stolen one).
        if (newPassword is not null || (disabled is true && !current.Disabled) || (role is not null && role != current.Role))
        {
            await access.EndTokensAsync(connection, transaction, id, cancellationToken);
        }

        var hash = newPassword is null ? null : hasher.HashPassword(current, newPassword);
        var updated = await connection.QuerySingleAsync<UserAccount>(new CommandDefinition(
            $"""
            UPDATE users SET role = coalesce(@role, role), disabled = coalesce(@disabled, disabled),
                password_hash = coalesce(@hash, password_hash), updated_at = now()
            WHERE id = @id
            RETURNING {Columns}
            """, new { id, role, disabled, hash }, transaction, cancellationToken: cancellationToken));

        await connection.WriteAsync(actor, "user.updated", "user", id.ToString(),
            new { Role = role, Disabled = disabled, PasswordChanged = newPassword is not null }, transaction, cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        access.Forget(id);
        return (UserChange.Done, updated);
    }

    /// <summary>
    /// Stops the user's sessions through the normal stop commands, then removes the user, in one transaction: either
    /// both happen or neither. The sessions stay, with their stop commands, so the agents still end the sessions'
    /// processes and report them stopped after the user is gone; the commands go to the agents once it has committed.
    /// </summary>
    public async Task<UserChange> DeleteAsync(Actor actor, Guid id, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        // Locking the row also holds off the user's own launches until this commits (they lock it too), so no
        // session can start between the stops and the delete.
        var current = await LockForChangeAsync(connection, transaction, id, cancellationToken);
        if (current is null)
        {
            return UserChange.NotFound;
        }

        if (current is { Role: UserRoles.Admin, Disabled: false } && !await OtherActiveAdminExistsAsync(connection, transaction, id, cancellationToken))
        {
            return UserChange.LastAdmin;
        }

        var agentIds = await sessions.StopAllAsync(connection, transaction, actor, id, cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition("DELETE FROM users WHERE id = @id", new { id }, transaction, cancellationToken: cancellationToken));
        await connection.WriteAsync(actor, "user.deleted", "user", id.ToString(), new { current.Username }, transaction, cancellationToken);
        await access.NotifyAsync(connection, transaction, id, cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        access.Forget(id);
        await sessions.DeliverAsync(agentIds);
        return UserChange.Done;
    }

    public async Task ChangePasswordAsync(Actor actor, Guid id, string newPassword, CancellationToken cancellationToken) =>
        await UpdateAsync(actor, id, role: null, disabled: null, newPassword, cancellationToken);

    /// <summary>The user's row, locked for a change, and the admin-change lock, so no change can leave no active admin.</summary>
    private static async Task<UserAccount?> LockForChangeAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, Guid id, CancellationToken cancellationToken)
    {
        await connection.ExecuteAsync(new CommandDefinition("SELECT pg_advisory_xact_lock(@AdminChangeLockKey)", new { AdminChangeLockKey }, transaction, cancellationToken: cancellationToken));
        return await connection.QuerySingleOrDefaultAsync<UserAccount>(new CommandDefinition(
            $"SELECT {Columns} FROM users WHERE id = @id FOR UPDATE", new { id }, transaction, cancellationToken: cancellationToken));
    }

    private static Task<bool> OtherActiveAdminExistsAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, Guid id, CancellationToken cancellationToken) =>
        connection.ExecuteScalarAsync<bool>(new CommandDefinition(
            "SELECT EXISTS (SELECT 1 FROM users WHERE role = 'admin' AND NOT disabled AND id <> @id)",
            new { id }, transaction, cancellationToken: cancellationToken));
}
