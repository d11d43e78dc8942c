using System.Collections.Concurrent;
using System.Net.WebSockets;
using System.Security.Claims;
using System.Text.Json;
using Dapper;
using Npgsql;
using StreamSpace.Api.Features.Audit;
using StreamSpace.Api.Features.Auth;
using StreamSpace.Api.Features.Sessions.Vnc;
using StreamSpace.Api.Infrastructure.Database;
using StreamSpace.Contracts;

namespace StreamSpace.Api.Features.Sessions.Viewers;

/// <summary>
/// What viewers need of shares: why the share a viewer came through no longer stands (ended, expired), or null
/// while it does. The Shares feature, which owns the shares' table, implements it.
/// </summary>
public interface IShareStatus
{
    Task<string?> EndedAsync(string shareId, CancellationToken cancellationToken);
}

/// <summary>One open VNC viewer on this instance: who opened it, what it carried, and why it must close, once it must.</summary>
public sealed class LiveViewer(Guid id, string sessionId, ClaimsPrincipal user, string? address, string? owner, DateTimeOffset since, ShareGrant? share = null)
{
    private readonly CancellationTokenSource closing = new();
    private long bytes;

    public Guid Id => id;
    public string SessionId => sessionId;
    /// <summary>The principal the viewer's ticket was issued to: the sign-in the viewer stands on.</summary>
    public ClaimsPrincipal User => user;
    public string? Address => address;
    public string? Owner => owner;
    public DateTimeOffset Since => since;
    /// <summary>The share the viewer came through; null for the owner's and admins' own viewers.</summary>
    public ShareGrant? Share => share;
    public long Bytes => Interlocked.Read(ref bytes);

    /// <summary>Cancelled once the viewer must close; <see cref="CloseStatus"/> then says why.</summary>
    public CancellationToken Closing => closing.Token;
    public (WebSocketCloseStatus Status, string Reason)? CloseStatus { get; private set; }

    public void Count(int count) => Interlocked.Add(ref bytes, count);

    /// <summary>Asks the viewer to close with this code; the first cause wins.</summary>
    public void Close(WebSocketCloseStatus status, string reason)
    {
        lock (closing)
        {
            if (CloseStatus is not null)
            {
                return;
            }

            CloseStatus = (status, reason);
        }

        closing.Cancel();
    }
}

/// <summary>
/// The open VNC viewers of every API instance, one <c>session_viewers</c> row each, so the owner or an admin can list
/// them and revoke one on any instance: the revocation deletes the row and NOTIFYs the viewer id, and the instance
/// holding the viewer closes it. Each viewer is watched every second while it is open, which also catches a
/// revocation whose NOTIFY was missed (its row is gone), the session leaving <c>running</c>, and the viewer's
/// sign-in no longer standing (<see cref="ActiveUserCheck"/>, on the principal its ticket was issued to).
/// </summary>
public sealed class SessionViewers(NpgsqlDataSource dataSource, ActiveUserCheck check, IShareStatus shares, TimeProvider time, ILogger<SessionViewers> logger)
    : IDatabaseNotificationHandler
{
    public const string NotifyChannel = "session_viewer_revocations";

    private static readonly TimeSpan WatchEvery = TimeSpan.FromSeconds(1);
    /// <summary>How often a viewer's row is refreshed; rows not seen for <see cref="ListedFor"/> belong to a dead instance.</summary>
    private static readonly TimeSpan TouchEvery = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan ListedFor = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan KeptFor = TimeSpan.FromMinutes(1);
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    /// <summary>Deletes the rows of viewers no instance refreshed for a minute: their instance died.</summary>
    private const string SweepSql = "DELETE FROM session_viewers WHERE seen_at < now() - make_interval(secs => @kept)";

    private readonly ConcurrentDictionary<Guid, LiveViewer> open = new();

    /// <param name="ShareEnded">Set when the viewer closes because its share ended: the reason it is told.</param>
    private sealed record Revocation(Guid ViewerId, string By, string? ShareEnded = null);

    string IDatabaseNotificationHandler.Channel => NotifyChannel;

    /// <summary>Registers and audits a viewer that just reached the session (through <paramref name="share"/>, if given); null when the session is gone.</summary>
    public async Task<LiveViewer?> OpenAsync(string sessionId, ClaimsPrincipal user, string? address, ShareGrant? share, CancellationToken cancellationToken)
    {
        var userId = user.RequiredUserId();
        var username = user.Identity?.Name ?? "unknown";
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        var owner = await connection.QuerySingleOrDefaultAsync<(Guid UserId, string? Username)?>(new CommandDefinition(
            "SELECT s.user_id, u.username FROM sessions s LEFT JOIN users u ON u.id = s.user_id WHERE s.id = @sessionId",
            new { sessionId }, transaction, cancellationToken: cancellationToken));
        if (owner is not { } found)
        {
            return null;
        }

        var viewer = new LiveViewer(Guid.NewGuid(), sessionId, user, address, found.Username, time.GetUtcNow(), share);
        await connection.ExecuteAsync(new CommandDefinition(
            $"""
            INSERT INTO session_viewers (id, session_id, user_id, username, address, share_id, view_only)
            VALUES (@Id, @sessionId, @userId, @username, @address, @shareId, @viewOnly);
            {SweepSql};
            """, new { viewer.Id, sessionId, userId, username, address, shareId = share?.ShareId, viewOnly = share?.ViewOnly ?? false, kept = KeptFor.TotalSeconds },
            transaction, cancellationToken: cancellationToken));
        if (share is not null)
        {
            await connection.WriteAsync(Actor.From(user), "share.joined", "session", sessionId,
                new { ViewerId = viewer.Id, share.ShareId, Mode = share.ViewOnly ? "view_only" : "interactive", Owner = found.Username, Address = address },
                transaction, cancellationToken);
        }

        var adminOfAnother = user.IsAdmin() && userId != found.UserId;
        await connection.WriteAsync(Actor.From(user), "session.viewer_connected", "session", sessionId,
            new { ViewerId = viewer.Id, Owner = found.Username, Address = address, Admin = adminOfAnother }, transaction, cancellationToken);
        if (adminOfAnother)
        {
            // The owner sees it on their sessions page, live.
            await connection.ExecuteAsync(new CommandDefinition(
                "UPDATE sessions SET last_viewed_by_admin = @username, last_viewed_by_admin_at = now() WHERE id = @sessionId",
                new { username, sessionId }, transaction, cancellationToken: cancellationToken));
            await SessionStateWriter.NotifyAsync(connection, transaction, sessionId, cancellationToken);
        }

        await transaction.CommitAsync(cancellationToken);
        open[viewer.Id] = viewer;
        return viewer;
    }

    /// <summary>Forgets and audits a viewer that closed, with how long it was open and what it carried.</summary>
    public async Task ClosedAsync(LiveViewer viewer, string reason)
    {
        open.TryRemove(viewer.Id, out _);
        try
        {
            await using var connection = await dataSource.OpenConnectionAsync();
            await using var transaction = await connection.BeginTransactionAsync();
            await connection.ExecuteAsync(new CommandDefinition("DELETE FROM session_viewers WHERE id = @Id", new { viewer.Id }, transaction));
            await connection.WriteAsync(Actor.From(viewer.User), "session.viewer_disconnected", "session", viewer.SessionId,
                new
                {
                    ViewerId = viewer.Id,
                    viewer.Owner,
                    viewer.Address,
                    DurationSeconds = Math.Round((time.GetUtcNow() - viewer.Since).TotalSeconds, 1),
                    viewer.Bytes,
                    Reason = reason,
                }, transaction);
            await transaction.CommitAsync();
        }
        catch (NpgsqlException e)
        {
            // The row is deleted by the other instances' sweep once it is a minute stale.
            logger.LogWarning("Could not record the close of viewer {ViewerId} of session {SessionId}: {Reason}", viewer.Id, viewer.SessionId, e.Message);
        }
    }

    /// <summary>Checks the viewer every second until it must close (then <see cref="LiveViewer.Close"/>) or <paramref name="cancellationToken"/> ends.</summary>
    public async Task WatchAsync(LiveViewer viewer, CancellationToken cancellationToken)
    {
        var touched = time.GetUtcNow();
        using var timer = new PeriodicTimer(WatchEvery, time);
        while (await timer.WaitForNextTickAsync(cancellationToken))
        {
            var touch = time.GetUtcNow() - touched >= TouchEvery;
            if (await CheckAsync(viewer, touch, cancellationToken) is { } close)
            {
                viewer.Close(close.Status, close.Reason);
                return;
            }

            if (touch)
            {
                touched = time.GetUtcNow();
            }
        }
    }

    /// <summary>Why the viewer must close now, or null while it may stay open.</summary>
    public async Task<(WebSocketCloseStatus Status, string Reason)?> CheckAsync(LiveViewer viewer, bool touch, CancellationToken cancellationToken)
    {
        if (viewer.CloseStatus is { } already)
        {
            return already;
        }

        try
        {
            if (await RightEndedAsync(viewer.User, viewer.Share, cancellationToken) is { } ended)
            {
                return ended;
            }

            await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
            if (touch)
            {
                await connection.ExecuteAsync(new CommandDefinition(
                    $"""
                    UPDATE session_viewers SET seen_at = now(), bytes = @Bytes WHERE id = @Id;
                    {SweepSql};
                    """, new { viewer.Id, viewer.Bytes, kept = KeptFor.TotalSeconds }, cancellationToken: cancellationToken));
            }

            var state = await connection.QuerySingleOrDefaultAsync<string?>(new CommandDefinition(
                "SELECT s.state FROM session_viewers v JOIN sessions s ON s.id = v.session_id WHERE v.id = @Id",
                new { viewer.Id }, cancellationToken: cancellationToken));
            return state is null ? (VncCloseCodes.Revoked, "the viewer was revoked") : SessionNames.ParseState(state) switch
            {
                SessionState.Running => null,
                _ => (VncCloseCodes.SessionEnded, $"the session is {state}"),
            };
        }
        catch (NpgsqlException e)
        {
            // A database outage must not cut every viewer; the next check tries again.
            logger.LogWarning("Could not check viewer {ViewerId} of session {SessionId}: {Reason}", viewer.Id, viewer.SessionId, e.Message);
            return null;
        }
    }

    /// <summary>
    /// Why a stream that rides beside a viewer (its sound) must close now, or null while it may stay open: the viewer's
    /// own checks (its sign-in, its share, the session running), without a row of its own in the viewers list.
    /// </summary>
    public async Task<(WebSocketCloseStatus Status, string Reason)?> CheckCompanionAsync(string sessionId, ClaimsPrincipal user, ShareGrant? share,
        CancellationToken cancellationToken)
    {
        try
        {
            if (await RightEndedAsync(user, share, cancellationToken) is { } ended)
            {
                return ended;
            }

            await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
            var state = await connection.QuerySingleOrDefaultAsync<string?>(new CommandDefinition(
                "SELECT state FROM sessions WHERE id = @sessionId", new { sessionId }, cancellationToken: cancellationToken));
            return state is null ? (VncCloseCodes.SessionEnded, "the session is gone") : SessionNames.ParseState(state) switch
            {
                SessionState.Running => null,
                _ => (VncCloseCodes.SessionEnded, $"the session is {state}"),
            };
        }
        catch (NpgsqlException e)
        {
            // As for a viewer: an outage must not cut every stream; the next check tries again.
            logger.LogWarning("Could not check a stream of session {SessionId}: {Reason}", sessionId, e.Message);
            return null;
        }
    }

    /// <summary>
    /// Whether <paramref name="user"/> has a viewer of the session open now (through <paramref name="share"/>, or through
    /// none when null), on any instance: a stream beside a viewer (its sound) lives only while one is. True when the
    /// database cannot tell, so an outage does not cut every stream.
    /// </summary>
    public async Task<bool> HasOpenViewerAsync(string sessionId, ClaimsPrincipal user, ShareGrant? share, CancellationToken cancellationToken)
    {
        try
        {
            await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
            return await connection.ExecuteScalarAsync<bool>(new CommandDefinition(
                """
                SELECT EXISTS (SELECT 1 FROM session_viewers WHERE session_id = @sessionId AND user_id = @userId
                    AND share_id IS NOT DISTINCT FROM @shareId AND seen_at > now() - make_interval(secs => @listed))
                """, new { sessionId, userId = user.RequiredUserId(), shareId = share?.ShareId, listed = ListedFor.TotalSeconds },
                cancellationToken: cancellationToken));
        }
        catch (NpgsqlException e)
        {
            logger.LogWarning("Could not look up the viewers of session {SessionId}: {Reason}", sessionId, e.Message);
            return true;
        }
    }

    /// <summary>Why the sign-in a viewer stands on, or the share it came through, no longer admits it; null while both do.</summary>
    private async Task<(WebSocketCloseStatus Status, string Reason)?> RightEndedAsync(ClaimsPrincipal user, ShareGrant? share, CancellationToken cancellationToken)
    {
        if (await check.RejectionAsync(user, cancellationToken) is { } rejection)
        {
            return (VncCloseCodes.SignInEnded, $"the viewer's sign-in no longer stands: {rejection}");
        }

        // Checked every second, so a share's expiry closes its viewers within seconds, on every instance.
        return share is not null && await shares.EndedAsync(share.ShareId, cancellationToken) is { } ended
            ? (VncCloseCodes.ShareEnded, ended)
            : null;
    }

    /// <summary>The session's open viewers, on any instance; those of a dead instance drop out within 30 s.</summary>
    public async Task<IReadOnlyList<ViewerResponse>> ListAsync(string sessionId, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        var rows = await connection.QueryAsync<(Guid Id, Guid UserId, string Username, string? Address, DateTime Since, long Bytes, string? ShareId, bool ViewOnly)>(new CommandDefinition(
            """
            SELECT id, user_id, username, address, connected_at, bytes, share_id, view_only FROM session_viewers
            WHERE session_id = @sessionId AND seen_at > now() - make_interval(secs => @listed)
            ORDER BY connected_at, id
            """, new { sessionId, listed = ListedFor.TotalSeconds }, cancellationToken: cancellationToken));
        // This instance's viewers count their bytes to the moment; the rows, to their last refresh.
        return [.. rows.Select(r => new ViewerResponse(r.Id, r.UserId, r.Username, r.Address,
            new DateTimeOffset(DateTime.SpecifyKind(r.Since, DateTimeKind.Utc)), open.TryGetValue(r.Id, out var live) ? live.Bytes : r.Bytes, r.ShareId, r.ViewOnly))];
    }

    /// <summary>Closes one viewer of the session, on whichever instance holds it; false when it is not open.</summary>
    public async Task<bool> RevokeAsync(Actor actor, string sessionId, Guid viewerId, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        var username = await connection.QuerySingleOrDefaultAsync<string?>(new CommandDefinition(
            "DELETE FROM session_viewers WHERE id = @viewerId AND session_id = @sessionId RETURNING username",
            new { viewerId, sessionId }, transaction, cancellationToken: cancellationToken));
        if (username is null)
        {
            return false;
        }

        await connection.WriteAsync(actor, "session.viewer_revoked", "session", sessionId, new { ViewerId = viewerId, Viewer = username }, transaction, cancellationToken);
        // Delivered on commit, to every instance; the one holding the viewer closes it. Missed, the viewer's next
        // check finds its row gone.
        await connection.ExecuteAsync(new CommandDefinition("SELECT pg_notify(@channel, @payload)",
            new { channel = NotifyChannel, payload = JsonSerializer.Serialize(new Revocation(viewerId, actor.Name), Json) }, transaction, cancellationToken: cancellationToken));
        await transaction.CommitAsync(cancellationToken);
        return true;
    }

    /// <summary>
    /// Closes every viewer that came through the share, on whichever instance holds it, telling each <paramref name="reason"/>.
    /// Called once the share has ended; a viewer whose NOTIFY is missed finds its share ended at its next check.
    /// </summary>
    public async Task CloseShareAsync(Actor actor, string shareId, string reason, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        var closed = await connection.QueryAsync<Guid>(new CommandDefinition(
            "DELETE FROM session_viewers WHERE share_id = @shareId RETURNING id", new { shareId }, transaction, cancellationToken: cancellationToken));
        foreach (var viewerId in closed)
        {
            await connection.ExecuteAsync(new CommandDefinition("SELECT pg_notify(@channel, @payload)",
                new { channel = NotifyChannel, payload = JsonSerializer.Serialize(new Revocation(viewerId, actor.Name, reason), Json) }, transaction, cancellationToken: cancellationToken));
        }

        await transaction.CommitAsync(cancellationToken);
    }

    public void OnNotification(string payload)
    {
        if (JsonSerializer.Deserialize<Revocation>(payload, Json) is { } revocation && open.TryGetValue(revocation.ViewerId, out var viewer))
        {
            // Off the listening connection: cancelling runs the viewer's continuations.
            _ = Task.Run(() =>
            {
                if (revocation.ShareEnded is { } reason)
                {
                    viewer.Close(VncCloseCodes.ShareEnded, reason);
                }
                else
                {
                    viewer.Close(VncCloseCodes.Revoked, $"the viewer was revoked by {revocation.By}");
                }
            });
        }
    }
}
