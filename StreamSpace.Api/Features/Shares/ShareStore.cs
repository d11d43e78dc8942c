using System.Buffers.Text;
using System.Security.Cryptography;
using Dapper;
using Npgsql;
using StreamSpace.Api.Features.Audit;

namespace StreamSpace.Api.Features.Shares;

/// <summary>A row of <c>session_shares</c>, with whether it has expired by the database's clock.</summary>
public sealed class ShareRow
{
    public string Id { get; init; } = "";
    public string SessionId { get; init; } = "";
    public Guid CreatedBy { get; init; }
    public string CreatedByName { get; init; } = "";
    public string Mode { get; init; } = ShareModes.ViewOnly;
    public Guid[]? AllowedUserIds { get; init; }
    public string[]? AllowedUsernames { get; init; }
    public DateTime ExpiresAt { get; init; }
    public DateTime? EndedAt { get; init; }
    public string? EndedBy { get; init; }
    public DateTime CreatedAt { get; init; }
    public bool Expired { get; init; }

    public bool ViewOnly => Mode == ShareModes.ViewOnly;

    /// <summary>Why the share no longer lets anyone in, or null while it does.</summary>
    public string? EndedReason => EndedAt is not null ? "This share has ended." : Expired ? "This share has expired." : null;

    /// <summary>Who may open it: anyone signed in when it names nobody, else the named users and whoever created it.</summary>
    public bool Admits(Guid userId) => AllowedUserIds is null || userId == CreatedBy || AllowedUserIds.Contains(userId);

    public ShareResponse ToResponse() => new(Id, SessionId, ShareLinks.Path(Id), Mode, Utc(ExpiresAt), AllowedUsernames, CreatedByName, Utc(CreatedAt));

    public static DateTimeOffset Utc(DateTime value) => new(DateTime.SpecifyKind(value, DateTimeKind.Utc));
}

/// <summary>Where a share is opened in the web app.</summary>
public static class ShareLinks
{
    public static string Path(string shareId) => $"/shares/{shareId}";
}

/// <summary>
/// The shares of running sessions, in <c>session_shares</c>. A share's id is the link's secret part: 32 random bytes,
/// so it cannot be guessed or enumerated. Creating and ending are audited in the same transaction.
/// </summary>
public sealed class ShareStore(NpgsqlDataSource dataSource)
{
    private const string Columns = """
        id, session_id, created_by, created_by_name, mode, allowed_user_ids, allowed_usernames, expires_at, ended_at, ended_by, created_at,
        expires_at <= now() AS expired
        """;

    public async Task<ShareRow> CreateAsync(Actor actor, SessionResponse session, string mode, TimeSpan lifetime,
        IReadOnlyList<(Guid Id, string Username)>? users, CancellationToken cancellationToken)
    {
        var id = Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(32));
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        var share = await connection.QuerySingleAsync<ShareRow>(new CommandDefinition(
            $"""
            INSERT INTO session_shares (id, session_id, created_by, created_by_name, mode, allowed_user_ids, allowed_usernames, expires_at)
            VALUES (@id, @sessionId, @createdBy, @createdByName, @mode, @userIds, @usernames, now() + make_interval(secs => @seconds))
            RETURNING {Columns}
            """,
            new
            {
                id,
                sessionId = session.Id,
                createdBy = actor.Id,
                createdByName = actor.Name,
                mode,
                userIds = users?.Select(u => u.Id).ToArray(),
                usernames = users?.Select(u => u.Username).ToArray(),
                seconds = lifetime.TotalSeconds,
            }, transaction, cancellationToken: cancellationToken));
        await connection.WriteAsync(actor, "share.created", "session", session.Id,
            new { ShareId = id, Mode = mode, Owner = session.Username, ExpiresAt = share.ToResponse().ExpiresAt, Users = users?.Select(u => u.Username).ToArray() },
            transaction, cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return share;
    }

    public async Task<ShareRow?> FindAsync(string shareId, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return await connection.QuerySingleOrDefaultAsync<ShareRow>(new CommandDefinition(
            $"SELECT {Columns} FROM session_shares WHERE id = @shareId", new { shareId }, cancellationToken: cancellationToken));
    }

    /// <summary>The session's shares that still admit viewers, oldest first.</summary>
    public async Task<IReadOnlyList<ShareRow>> ActiveAsync(string sessionId, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return [.. await connection.QueryAsync<ShareRow>(new CommandDefinition(
            $"SELECT {Columns} FROM session_shares WHERE session_id = @sessionId AND ended_at IS NULL AND expires_at > now() ORDER BY created_at, id",
            new { sessionId }, cancellationToken: cancellationToken))];
    }

    /// <summary>Ends one share of the session; false when it has no such share still active.</summary>
    public async Task<bool> EndAsync(Actor actor, string sessionId, string shareId, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        var mode = await connection.QuerySingleOrDefaultAsync<string?>(new CommandDefinition(
            """
            UPDATE session_shares SET ended_at = now(), ended_by = @by
            WHERE id = @shareId AND session_id = @sessionId AND ended_at IS NULL AND expires_at > now()
            RETURNING mode
            """, new { shareId, sessionId, by = actor.Name }, transaction, cancellationToken: cancellationToken));
        if (mode is null)
        {
            return false;
        }

        await connection.WriteAsync(actor, "share.ended", "session", sessionId, new { ShareId = shareId, Mode = mode }, transaction, cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return true;
    }
}
