using System.Security.Claims;
using Dapper;
using Microsoft.Extensions.Caching.Memory;
using Npgsql;
using StreamSpace.Api.Features.Tokens;
using StreamSpace.Api.Infrastructure.Database;

namespace StreamSpace.Api.Features.Auth;

/// <summary>
/// Rejects a still-valid token whose user was since disabled, deleted or given another role, whose user's token
/// version moved on (password change, sign-out everywhere), or which was itself logged out, so each of these takes
/// effect within seconds instead of at the token's expiry. One query per user (status, version and that user's
/// logged-out token ids) is cached for <see cref="CacheFor"/>; a change forgets it at once on the instance that made it
/// and, through NOTIFY, on every other instance. A personal API token's own row is read each time (<see cref="IApiTokens"/>).
/// </summary>
public sealed class ActiveUserCheck(NpgsqlDataSource dataSource, IMemoryCache cache, TimeProvider time, IApiTokens apiTokens) : IDatabaseNotificationHandler
{
    public const string NotifyChannel = "user_tokens";

    private static readonly TimeSpan CacheFor = TimeSpan.FromSeconds(5);

    private sealed class UserStatus
    {
        public string Role { get; init; } = "";
        public bool Disabled { get; init; }
        public int TokenVersion { get; init; }
        /// <summary>The user's logged-out tokens that have not expired yet: few, so a list is enough.</summary>
        public Guid[] RevokedTokenIds { get; init; } = [];
    }

    /// <summary>
    /// Why the signed-in principal must be refused now, or null while its token still stands: the one check for every
    /// request and for long-lived streams (events, viewers), which repeat it while they run.
    /// </summary>
    public async Task<string?> RejectionAsync(ClaimsPrincipal principal, CancellationToken cancellationToken)
    {
        if (principal.UserId() is not { } id)
        {
            return "the token names no user";
        }

        if (principal.ExpiresAt() is { } expires && expires + TokenIssuer.ClockSkew <= time.GetUtcNow())
        {
            // The same allowance for clock skew as the token's validation at the start of the request.
            return "the token expired";
        }

        // A personal API token's principal: its token must still stand too (revoked, expired), checked uncached.
        if (principal.ApiTokenId() is { } apiTokenId && await apiTokens.RejectionAsync(apiTokenId, cancellationToken) is { } tokenRejection)
        {
            return tokenRejection;
        }

        return await UserRejectionAsync(principal, cancellationToken);
    }

    /// <summary>
    /// The user's part of <see cref="RejectionAsync"/> alone: for the API token handler, which has just read the token's
    /// row itself and need not read it twice on every request.
    /// </summary>
    public async Task<string?> UserRejectionAsync(ClaimsPrincipal principal, CancellationToken cancellationToken)
    {
        if (principal.UserId() is not { } id)
        {
            return "the token names no user";
        }

        var status = await StatusAsync(id, cancellationToken);
        return status switch
        {
            null => "the user no longer exists",
            { Disabled: true } => "the user is disabled",
            _ when status.Role != principal.FindFirst(ClaimNames.Role)?.Value => "the user's role changed; sign in again",
            _ when status.TokenVersion != principal.TokenVersion() => "the token was revoked; sign in again",
            _ when principal.TokenId() is { } jti && status.RevokedTokenIds.Contains(jti) => "the token was signed out",
            _ => null,
        };
    }

    /// <summary>
    /// Counts <see cref="Forget"/> calls. A read that started before a change committed may finish after its Forget:
    /// such a read is answered but not cached, or the revoked token would stand for another 5 s on this instance.
    /// </summary>
    private long forgets;

    private Task<UserStatus?> StatusAsync(Guid userId, CancellationToken cancellationToken) =>
        cache.GetOrCreateAsync(CacheKey(userId), async entry =>
        {
            var forgetsBefore = Interlocked.Read(ref forgets);
            entry.AbsoluteExpirationRelativeToNow = CacheFor;
            await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
            var status = await connection.QuerySingleOrDefaultAsync<UserStatus>(new CommandDefinition(
                """
                SELECT role, disabled, token_version,
                    ARRAY(SELECT jti FROM revoked_tokens WHERE user_id = users.id AND expires_at > now()) AS revoked_token_ids
                FROM users WHERE id = @userId
                """, new { userId }, cancellationToken: cancellationToken));
            if (Interlocked.Read(ref forgets) != forgetsBefore)
            {
                entry.AbsoluteExpirationRelativeToNow = TimeSpan.FromTicks(1);
            }

            return status;
        });

    /// <summary>Called after a change to the user, so this instance applies it at once.</summary>
    public void Forget(Guid userId)
    {
        Interlocked.Increment(ref forgets);
        cache.Remove(CacheKey(userId));
    }

    /// <summary>
    /// Tells every API instance that the user's tokens changed, so each forgets its cached status; PostgreSQL delivers it
    /// only if <paramref name="transaction"/> commits. A notification lost while an instance re-listens still takes
    /// effect when that instance's cache entry expires.
    /// </summary>
    public static Task NotifyAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, Guid userId, CancellationToken cancellationToken) =>
        connection.ExecuteAsync(new CommandDefinition("SELECT pg_notify(@channel, @userId)",
            new { channel = NotifyChannel, userId = userId.ToString() }, transaction, cancellationToken: cancellationToken));

    string IDatabaseNotificationHandler.Channel => NotifyChannel;

    void IDatabaseNotificationHandler.OnNotification(string payload)
    {
        if (Guid.TryParse(payload, out var userId))
        {
            Forget(userId);
        }
    }

    /// <summary>
    /// A token change NOTIFYed while this instance was re-listening was missed: every cached status is forgotten, by
    /// moving to a new generation of keys (the old entries expire on their own within <see cref="CacheFor"/>).
    /// </summary>
    void IDatabaseNotificationHandler.OnListening()
    {
        Interlocked.Increment(ref forgets);
        Interlocked.Increment(ref generation);
    }

    private long generation;

    private string CacheKey(Guid userId) => $"user-status:{Interlocked.Read(ref generation)}:{userId}";
}
