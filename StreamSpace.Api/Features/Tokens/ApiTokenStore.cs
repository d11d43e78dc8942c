using Dapper;
using Npgsql;
using StreamSpace.Api.Features.Audit;

namespace StreamSpace.Api.Features.Tokens;

/// <summary>A token found by its secret, with what its principal needs of its user.</summary>
public sealed class ApiTokenMatch
{
    public Guid Id { get; init; }
    public Guid UserId { get; init; }
    public string Username { get; init; } = "";
    public string Role { get; init; } = "";
    public string[] Scopes { get; init; } = [];
    public int TokenVersion { get; init; }
    public DateTime ExpiresAt { get; init; }
    public DateTime? RevokedAt { get; init; }
    public DateTime? LastUsedAt { get; init; }
}

public enum TokenRevocation
{
    Revoked,
    AlreadyRevoked,
    NotFound,
}

/// <summary>
/// Owns <c>api_tokens</c>. Every request with a token reads its row (one probe of a unique index), with no cache: a
/// revocation holds on the next request on every replica, and a token request costs what a cache miss would.
/// </summary>
public sealed class ApiTokenStore(NpgsqlDataSource dataSource, TimeProvider time) : IApiTokens
{
    /// <summary>last_used_at is written at most this often per token, so a busy script does not write a row per request.</summary>
    private static readonly TimeSpan TouchEvery = TimeSpan.FromMinutes(1);

    private const string ResponseColumns =
        """
        t.id, t.user_id, u.username, t.name, t.prefix, t.scopes, t.created_at, t.expires_at, t.last_used_at, t.revoked_at,
        t.token_version < u.token_version AS signed_out
        """;

    private sealed class ResponseRow
    {
        public Guid Id { get; init; }
        public Guid UserId { get; init; }
        public string Username { get; init; } = "";
        public string Name { get; init; } = "";
        public string Prefix { get; init; } = "";
        public string[] Scopes { get; init; } = [];
        public DateTime CreatedAt { get; init; }
        public DateTime ExpiresAt { get; init; }
        public DateTime? LastUsedAt { get; init; }
        public DateTime? RevokedAt { get; init; }
        public bool SignedOut { get; init; }
    }

    public async Task<CreatedApiTokenResponse> CreateAsync(Actor actor, Guid userId, CreateApiTokenRequest request, CancellationToken cancellationToken)
    {
        var token = ApiTokenSecret.New();
        var id = Guid.NewGuid();
        var now = time.GetUtcNow();
        var scopes = request.Scopes.Distinct().Order(StringComparer.Ordinal).ToArray();
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition(
            """
            INSERT INTO api_tokens (id, user_id, name, scopes, token_hash, prefix, token_version, created_at, expires_at)
            SELECT @id, id, @Name, @scopes, @hash, @prefix, token_version, @now, @expires FROM users WHERE id = @userId
            """, new
            {
                id, userId, request.Name, scopes, hash = ApiTokenSecret.Hash(token), prefix = ApiTokenSecret.Prefix(token), now,
                expires = now.AddDays(request.ExpiresInDays),
            }, transaction, cancellationToken: cancellationToken));
        await connection.WriteAsync(actor, "token.created", "api_token", id.ToString(),
            new { request.Name, Scopes = scopes, request.ExpiresInDays, UserId = userId }, transaction, cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        var created = await FindAsync(id, cancellationToken) ?? throw new InvalidOperationException("The token's user no longer exists.");
        return new CreatedApiTokenResponse(token, created);
    }

    public async Task<ApiTokenResponse?> FindAsync(Guid id, CancellationToken cancellationToken) =>
        (await QueryAsync("WHERE t.id = @id", new { id }, cancellationToken)).SingleOrDefault();

    /// <summary>The user's tokens, or everyone's when <paramref name="userId"/> is null; newest first.</summary>
    public Task<IReadOnlyList<ApiTokenResponse>> ListAsync(Guid? userId, CancellationToken cancellationToken) =>
        QueryAsync("WHERE @userId::uuid IS NULL OR t.user_id = @userId", new { userId }, cancellationToken);

    private async Task<IReadOnlyList<ApiTokenResponse>> QueryAsync(string where, object parameters, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        var rows = await connection.QueryAsync<ResponseRow>(new CommandDefinition(
            $"SELECT {ResponseColumns} FROM api_tokens t JOIN users u ON u.id = t.user_id {where} ORDER BY t.created_at DESC, t.id",
            parameters, cancellationToken: cancellationToken));
        var now = time.GetUtcNow();
        return [.. rows.Select(r => new ApiTokenResponse(r.Id, r.UserId, r.Username, r.Name, r.Prefix, r.Scopes, Utc(r.CreatedAt), Utc(r.ExpiresAt),
            Utc(r.LastUsedAt), Utc(r.RevokedAt), State(r, now)))];
    }

    private static string State(ResponseRow row, DateTimeOffset now) => row switch
    {
        { RevokedAt: not null } => "revoked",
        _ when Utc(row.ExpiresAt) <= now => "expired",
        { SignedOut: true } => "signed_out",
        _ => "active",
    };

    /// <summary>Revokes a token; with <paramref name="ownerId"/>, only if it is that user's (else NotFound, so ids reveal nothing).</summary>
    public async Task<TokenRevocation> RevokeAsync(Actor actor, Guid id, Guid? ownerId, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        var token = await connection.QuerySingleOrDefaultAsync<(Guid UserId, string Name, DateTime? RevokedAt)?>(new CommandDefinition(
            "SELECT user_id, name, revoked_at FROM api_tokens WHERE id = @id AND (@ownerId::uuid IS NULL OR user_id = @ownerId) FOR UPDATE",
            new { id, ownerId }, transaction, cancellationToken: cancellationToken));
        if (token is not { } found)
        {
            return TokenRevocation.NotFound;
        }

        if (found.RevokedAt is not null)
        {
            return TokenRevocation.AlreadyRevoked;
        }

        await connection.ExecuteAsync(new CommandDefinition("UPDATE api_tokens SET revoked_at = @now WHERE id = @id",
            new { id, now = time.GetUtcNow() }, transaction, cancellationToken: cancellationToken));
        await connection.WriteAsync(actor, "token.revoked", "api_token", id.ToString(), new { found.Name, found.UserId }, transaction, cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return TokenRevocation.Revoked;
    }

    /// <summary>The token with this secret, whatever its state (the caller says why it is refused), or null.</summary>
    public async Task<ApiTokenMatch?> FindBySecretAsync(string token, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return await connection.QuerySingleOrDefaultAsync<ApiTokenMatch>(new CommandDefinition(
            """
            SELECT t.id, t.user_id, u.username, u.role, t.scopes, t.token_version, t.expires_at, t.revoked_at, t.last_used_at
            FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = @hash
            """, new { hash = ApiTokenSecret.Hash(token) }, cancellationToken: cancellationToken));
    }

    public static string? Rejection(DateTime expiresAt, DateTime? revokedAt, DateTimeOffset now) => (expiresAt, revokedAt) switch
    {
        (_, not null) => "the API token was revoked",
        _ when Utc(expiresAt) <= now => "the API token expired",
        _ => null,
    };

    public async Task<string?> RejectionAsync(Guid tokenId, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        var token = await connection.QuerySingleOrDefaultAsync<(DateTime ExpiresAt, DateTime? RevokedAt)?>(new CommandDefinition(
            "SELECT expires_at, revoked_at FROM api_tokens WHERE id = @tokenId", new { tokenId }, cancellationToken: cancellationToken));
        return token is { } found ? Rejection(found.ExpiresAt, found.RevokedAt, time.GetUtcNow()) : "the API token no longer exists";
    }

    /// <summary>
    /// Records a use: last_used_at at most once per <see cref="TouchEvery"/>, and a <c>token.used</c> audit row for the
    /// first use of each UTC day, so the audit log shows which tokens are in use without a row per request.
    /// </summary>
    public async Task TouchAsync(ApiTokenMatch token, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        if (token.LastUsedAt is { } last && now - Utc(last) < TouchEvery)
        {
            return;
        }

        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        // previous reads the row before the update; the update's own check makes concurrent requests touch it once.
        var touched = await connection.QueryAsync<DateTime?>(new CommandDefinition(
            """
            WITH previous AS (SELECT last_used_at FROM api_tokens WHERE id = @Id)
            UPDATE api_tokens t SET last_used_at = @now FROM previous
            WHERE t.id = @Id AND (t.last_used_at IS NULL OR t.last_used_at <= @now - @every::interval)
            RETURNING previous.last_used_at
            """, new { token.Id, now, every = TouchEvery }, cancellationToken: cancellationToken));
        if (touched.ToList() is [var previous] && (previous is null || Utc(previous.Value).UtcDateTime.Date != now.UtcDateTime.Date))
        {
            await connection.WriteAsync(new Actor(token.UserId, token.Username), "token.used", "api_token", token.Id.ToString(),
                cancellationToken: cancellationToken);
        }
    }

    private static DateTimeOffset Utc(DateTime value) => new(DateTime.SpecifyKind(value, DateTimeKind.Utc));

    private static DateTimeOffset? Utc(DateTime? value) => value is { } v ? Utc(v) : null;
}
