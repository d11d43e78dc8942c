using System.Security.Claims;
using Dapper;
using Npgsql;
using StreamSpace.Api.Features.Audit;

namespace StreamSpace.Api.Features.Auth;

/// <summary>How a user signed in, as the audit trail records it.</summary>
public static class SignInMethods
{
    public const string Password = "password";
    public const string Oidc = "oidc";
}

/// <summary>
/// Records sign-ins and takes tokens back: one token (logout), or all of a user's (a token version bump). Each change
/// and its audit row commit together, NOTIFY every API instance, and take effect at once on this one.
/// </summary>
public sealed class SignIns(NpgsqlDataSource dataSource, ActiveUserCheck activeUsers)
{
    /// <summary>Audits a sign-in; <paramref name="method"/> is one of <see cref="SignInMethods"/>.</summary>
    public async Task RecordSignInAsync(Guid userId, string username, string method, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await connection.WriteAsync(new Actor(userId, username), "auth.signed_in", "user", userId.ToString(), new { Method = method }, cancellationToken: cancellationToken);
    }

    /// <summary>Ends the principal's own token, kept on the denylist until it would have expired anyway.</summary>
    public async Task SignOutAsync(ClaimsPrincipal principal, CancellationToken cancellationToken)
    {
        var userId = principal.RequiredUserId();
        if (principal.TokenId() is not { } jti || principal.ExpiresAt() is not { } expiresAt)
        {
            // A token from before token ids existed cannot be named on its own: end them all rather than none.
            await SignOutEverywhereAsync(Actor.From(principal), userId, "auth.signed_out", cancellationToken);
            return;
        }

        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        // Entries past their token's expiry guard nothing any more; clearing them here keeps the table small without a job.
        await connection.ExecuteAsync(new CommandDefinition(
            """
            DELETE FROM revoked_tokens WHERE expires_at < now() - interval '1 minute';
            INSERT INTO revoked_tokens (jti, user_id, expires_at) VALUES (@jti, @userId, @expiresAt) ON CONFLICT (jti) DO NOTHING;
            """, new { jti, userId, expiresAt = expiresAt + TokenIssuer.ClockSkew }, transaction, cancellationToken: cancellationToken));
        await connection.WriteAsync(Actor.From(principal), "auth.signed_out", "user", userId.ToString(), new { TokenId = jti }, transaction, cancellationToken);
        await ActiveUserCheck.NotifyAsync(connection, transaction, userId, cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        activeUsers.Forget(userId);
    }

    /// <summary>Ends every token of the user issued so far; false when there is no such user.</summary>
    public async Task<bool> SignOutEverywhereAsync(Actor actor, Guid userId, string auditAction, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        var found = await BumpTokenVersionAsync(connection, transaction, userId, cancellationToken);
        if (!found)
        {
            return false;
        }

        await connection.WriteAsync(actor, auditAction, "user", userId.ToString(), transaction: transaction, cancellationToken: cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        activeUsers.Forget(userId);
        return true;
    }

    /// <summary>
    /// Ends every token of the user issued so far, inside the caller's transaction (and NOTIFYs on commit); the caller
    /// calls <see cref="ActiveUserCheck.Forget"/> after committing. False when there is no such user.
    /// </summary>
    public static async Task<bool> BumpTokenVersionAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, Guid userId, CancellationToken cancellationToken)
    {
        var rows = await connection.ExecuteAsync(new CommandDefinition(
            "UPDATE users SET token_version = token_version + 1, updated_at = now() WHERE id = @userId",
            new { userId }, transaction, cancellationToken: cancellationToken));
        if (rows == 0)
        {
            return false;
        }

        await ActiveUserCheck.NotifyAsync(connection, transaction, userId, cancellationToken);
        return true;
    }
}
