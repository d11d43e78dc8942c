using System.Buffers.Text;
using System.Collections.Concurrent;
using System.Security.Claims;
using System.Security.Cryptography;

namespace StreamSpace.Api.Features.Sessions.Vnc;

public sealed record VncTicket(string Value, DateTimeOffset ExpiresAt);

/// <summary>
/// Single-use tickets for /vnc, bound to one session and one user, valid for 30 seconds. A browser cannot set
/// headers on a WebSocket, so the ticket rides in the query string; being short-lived and single-use, a leaked
/// URL is worthless. Kept in memory: the tunnel runs on the API instance that holds the agent's socket anyway.
/// A ticket keeps the principal it was issued to, so the viewer it opens is checked against that sign-in for as
/// long as it stays open (<see cref="Auth.ActiveUserCheck"/>).
/// </summary>
public sealed class VncTickets(TimeProvider time)
{
    public static readonly TimeSpan Lifetime = TimeSpan.FromSeconds(30);
    private readonly ConcurrentDictionary<string, (string SessionId, ClaimsPrincipal User, DateTimeOffset ExpiresAt)> tickets = new();

    public VncTicket Issue(string sessionId, ClaimsPrincipal user)
    {
        Forget();
        var value = Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(32));
        var expires = time.GetUtcNow() + Lifetime;
        tickets[value] = (sessionId, user, expires);
        return new VncTicket(value, expires);
    }

    /// <summary>Takes the ticket (it cannot be used again); the principal it was issued to when it opens this session, else null.</summary>
    public ClaimsPrincipal? Redeem(string? value, string sessionId)
    {
        return value is not null && tickets.TryRemove(value, out var ticket)
            && ticket.SessionId == sessionId && ticket.ExpiresAt > time.GetUtcNow() ? ticket.User : null;
    }

    private void Forget()
    {
        var now = time.GetUtcNow();
        foreach (var (key, ticket) in tickets)
        {
            if (ticket.ExpiresAt <= now)
            {
                tickets.TryRemove(key, out _);
            }
        }
    }
}
