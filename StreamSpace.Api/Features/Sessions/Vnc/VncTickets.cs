using StreamSpace.Api.Infrastructure;
using System.Buffers.Text;
using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Dapper;
using Npgsql;
using StreamSpace.Api.Features.Auth;
using StreamSpace.Api.Features.Replicas;

namespace StreamSpace.Api.Features.Sessions.Vnc;

public sealed record VncTicket(string Value, DateTimeOffset ExpiresAt);

/// <summary>What a ticket opens: a ticket issued for one socket is refused by the other.</summary>
public enum TicketPurpose
{
    Vnc,
    Audio,
}

/// <summary>A viewer admitted through a share rather than as the session's owner or an admin: which share, and whether it only watches.</summary>
public sealed record ShareGrant(string ShareId, bool ViewOnly);

/// <summary>A redeemed ticket: the principal it was issued to and, for a shared viewer, the share it came through.</summary>
public sealed record RedeemedTicket(ClaimsPrincipal User, ShareGrant? Share);

/// <summary>
/// Single-use tickets for /vnc, bound to one session and one user, valid for 30 seconds. A browser cannot set
/// headers on a WebSocket, so the ticket rides in the query string; being short-lived and single-use, a leaked
/// URL is worthless. Kept in <c>vnc_tickets</c>, keyed by the ticket's SHA-256, so a ticket issued by one replica is
/// redeemed on any other, once: redeeming is one <c>DELETE … RETURNING</c>, and PostgreSQL's clock alone decides expiry.
/// A ticket keeps the claims of the principal it was issued to, so the viewer it opens is checked against that
/// sign-in for as long as it stays open (<see cref="ActiveUserCheck"/>).
/// </summary>
public sealed class VncTickets(NpgsqlDataSource dataSource, ReplicaIdentity replica)
{
    public static readonly TimeSpan Lifetime = TimeSpan.FromSeconds(30);

    /// <summary>Tickets start with this, so /vnc refuses anything else (an agent's data token) before any lookup.</summary>
    public const string Prefix = "vt1.";

    /// <summary>Expired tickets are deleted this long after their expiry, by whichever replica issues the next one.</summary>
    private static readonly TimeSpan KeptAfterExpiry = TimeSpan.FromMinutes(1);

    private sealed record StoredClaims(string AuthenticationType, string NameType, string RoleType, ClaimRow[] Claims);

    private sealed record ClaimRow(string Type, string Value);

    private sealed record Redeemed(string SessionId, string Claims, bool Valid, string? ShareId, bool ViewOnly, string Purpose);

    private readonly OncePer sweep = new(TimeSpan.FromMinutes(1));

    /// <param name="share">For a viewer admitted through a share: the share, kept in the ticket, so the viewer is bound to it.</param>
    public async Task<VncTicket> IssueAsync(string sessionId, TicketPurpose purpose, ClaimsPrincipal user, CancellationToken cancellationToken, ShareGrant? share = null)
    {
        var value = Prefix + Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(32));
        var identity = user.Identities.First();
        var claims = JsonSerializer.Serialize(new StoredClaims(identity.AuthenticationType ?? "ticket", identity.NameClaimType, identity.RoleClaimType,
            [.. user.Claims.Select(c => new ClaimRow(c.Type, c.Value))]));
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        var expires = await connection.ExecuteScalarAsync<DateTime>(new CommandDefinition(
            $"""
            INSERT INTO vnc_tickets (ticket_hash, session_id, user_id, claims, issued_by, expires_at, share_id, view_only, purpose)
            VALUES (@hash, @sessionId, @userId, @claims::jsonb, @issuedBy, now() + make_interval(secs => @lifetime), @shareId, @viewOnly, @purpose)
            RETURNING expires_at;
            {SweepSql()}
            """,
            new { hash = Hash(value), sessionId, userId = user.RequiredUserId(), claims, issuedBy = replica.Id, lifetime = Lifetime.TotalSeconds, kept = KeptAfterExpiry.TotalSeconds,
                shareId = share?.ShareId, viewOnly = share?.ViewOnly ?? false, purpose = PurposeName(purpose) },
            cancellationToken: cancellationToken));
        return new VncTicket(value, new DateTimeOffset(DateTime.SpecifyKind(expires, DateTimeKind.Utc)));
    }

    /// <summary>
    /// Takes the ticket (it cannot be used again, on any replica); the principal it was issued to (and its share) when it
    /// opens this session for this purpose, else null.
    /// </summary>
    public async Task<RedeemedTicket?> RedeemAsync(string? value, string sessionId, TicketPurpose purpose, CancellationToken cancellationToken)
    {
        if (!IsWellFormed(value))
        {
            return null;
        }

        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return Principal(await connection.QuerySingleOrDefaultAsync<Redeemed>(new CommandDefinition(RedeemSql, new { hash = Hash(value!) },
            cancellationToken: cancellationToken)), sessionId, purpose);
    }

    // A ticket presented for another session or purpose is consumed all the same, and refused.
    private const string RedeemSql =
        "DELETE FROM vnc_tickets WHERE ticket_hash = @hash RETURNING session_id, claims::text AS claims, expires_at > now() AS valid, share_id, view_only, purpose";

    private static bool IsWellFormed(string? value) => value is { Length: < 128 } && value.StartsWith(Prefix, StringComparison.Ordinal);

    private static RedeemedTicket? Principal(Redeemed? ticket, string sessionId, TicketPurpose purpose)
    {
        if (ticket is not { Valid: true } || ticket.SessionId != sessionId || ticket.Purpose != PurposeName(purpose))
        {
            return null;
        }

        var stored = JsonSerializer.Deserialize<StoredClaims>(ticket.Claims)!;
        return new RedeemedTicket(
            new ClaimsPrincipal(new ClaimsIdentity(stored.Claims.Select(c => new Claim(c.Type, c.Value)), stored.AuthenticationType, stored.NameType, stored.RoleType)),
            ticket.ShareId is { } shareId ? new ShareGrant(shareId, ticket.ViewOnly) : null);
    }

    /// <summary>About once a minute per replica, the issue also deletes tickets that expired a minute ago; otherwise nothing.</summary>
    private string SweepSql() => sweep.IsDue()
        ? "DELETE FROM vnc_tickets WHERE expires_at < now() - make_interval(secs => @kept);"
        : "";

    private static string PurposeName(TicketPurpose purpose) => purpose switch
    {
        TicketPurpose.Vnc => "vnc",
        TicketPurpose.Audio => "audio",
        _ => throw new ArgumentOutOfRangeException(nameof(purpose), purpose, null),
    };

    private static byte[] Hash(string value) => SHA256.HashData(Encoding.UTF8.GetBytes(value));
}
