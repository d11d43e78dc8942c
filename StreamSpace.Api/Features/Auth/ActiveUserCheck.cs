using System.Security.Claims;
using Dapper;
using Microsoft.Extensions.Caching.Memory;
using Npgsql;

namespace StreamSpace.Api.Features.Auth;

/// <summary>
/// Rejects a still-valid token whose user was since disabled, deleted or given another role, so an admin's
/// change takes effect within seconds instead of at the token's expiry. Lookups are cached briefly to keep
/// the check off the hot path.
/// </summary>
public sealed class ActiveUserCheck(NpgsqlDataSource dataSource, IMemoryCache cache, TimeProvider time)
{
    private static readonly TimeSpan CacheFor = TimeSpan.FromSeconds(5);

    private sealed record UserStatus(string Role, bool Disabled);

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

        if (principal.FindFirst("exp")?.Value is { } exp && long.TryParse(exp, out var seconds)
            && DateTimeOffset.FromUnixTimeSeconds(seconds) + TokenIssuer.ClockSkew <= time.GetUtcNow())
        {
            // The same allowance for clock skew as the token's validation at the start of the request.
            return "the token expired";
        }

        return await RejectionAsync(id, principal.FindFirst(ClaimNames.Role)?.Value, cancellationToken);
    }

    /// <summary>Why the token must be refused, or null when its user is active with that role.</summary>
    public async Task<string?> RejectionAsync(Guid userId, string? role, CancellationToken cancellationToken)
    {
        var status = await cache.GetOrCreateAsync(CacheKey(userId), async entry =>
        {
            entry.AbsoluteExpirationRelativeToNow = CacheFor;
            await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
            return await connection.QuerySingleOrDefaultAsync<UserStatus>(new CommandDefinition(
                "SELECT role, disabled FROM users WHERE id = @userId", new { userId }, cancellationToken: cancellationToken));
        });

        return status switch
        {
            null => "the user no longer exists",
            { Disabled: true } => "the user is disabled",
            _ when status.Role != role => "the user's role changed; sign in again",
            _ => null,
        };
    }

    /// <summary>Called after a change to the user, so this instance applies it at once.</summary>
    public void Forget(Guid userId) => cache.Remove(CacheKey(userId));

    private static string CacheKey(Guid userId) => $"user-status:{userId}";
}
