using System.Net;
using Npgsql;
using StreamSpace.Api.Features.Audit;
using StreamSpace.Api.Infrastructure;

namespace StreamSpace.Api.Features.Auth;

/// <summary>
/// Limits wrong passwords, counting failures only. Logins are limited per (username, client address), so a stranger
/// elsewhere cannot lock a user out; per client address across usernames, so one address cannot sweep accounts; and,
/// more slowly, per username from all addresses, so many addresses guessing one password are slow too, while that lock
/// lasts one 5-minute window at most. Password changes are limited per user. The client address is the one the
/// trusted-proxy middleware resolved (X-Forwarded-For from trusted proxies only). Each lockout writes one audit row
/// (its window's first refusal), so a flood of attempts cannot fill the audit log. The counts are kept in PostgreSQL
/// (<see cref="PostgresFailureWindows"/>), so they hold across replicas.
/// </summary>
public sealed class LoginThrottle(IFailureWindows windows, ApiSettings settings, NpgsqlDataSource dataSource, ILogger<LoginThrottle> logger)
{
    private readonly FailureLimit perUsernameAndAddress = new("login.user_address", settings.LoginAttemptsPerMinute, TimeSpan.FromMinutes(1));
    private readonly FailureLimit perAddress = new("login.address", settings.LoginFailuresPerAddress, TimeSpan.FromMinutes(1));
    private readonly FailureLimit perUsername = new("login.user", settings.LoginFailuresPerUsername, TimeSpan.FromMinutes(5));
    private readonly FailureLimit passwordChange = new("password.user", settings.LoginAttemptsPerMinute, TimeSpan.FromMinutes(1));

    /// <summary>
    /// The 429 to answer when the username or the address is locked; null when the attempt may go ahead, in which case
    /// it is already counted as a failure (see <see cref="IFailureWindows.ReserveAsync"/>) until <see cref="LoginSucceededAsync"/>.
    /// </summary>
    public async Task<IResult?> LoginRefusalAsync(string username, IPAddress? address, CancellationToken cancellationToken)
    {
        var attempts = new List<(FailureLimit Limit, string Subject, FailureVerdict Verdict)>(3);
        foreach (var (limit, subject) in LoginLimits(username, address))
        {
            attempts.Add((limit, subject, await windows.ReserveAsync(limit, subject, cancellationToken)));
        }

        var refusals = attempts.Where(a => a.Verdict.Limited).ToList();
        if (refusals.Count == 0)
        {
            return null;
        }

        // A refused attempt is no failure of its own: only the attempts that ran count.
        foreach (var (limit, subject, _) in attempts.Where(a => !a.Verdict.Limited))
        {
            // Not the request's token: a client that goes away must not leave an attempt counted that was no failure.
            await windows.RefundAsync(limit, subject, CancellationToken.None);
        }

        // One row per lockout, for each limit that locked (a username attacked from many addresses shows as such).
        var (user, client) = Subjects(username, address);
        foreach (var (limit, _, _) in refusals.Where(r => r.Verdict.FirstRefusal))
        {
            await AuditAsync("auth.login_limited", "login", user, new { client_address = client, limit = limit.Name, failures = limit.Failures,
                window_seconds = (int)limit.Window.TotalSeconds }, cancellationToken);
        }

        return AuthExtensions.TooManyAttempts("Too many login attempts.", refusals.Max(r => r.Verdict.RetryAfter));
    }

    /// <summary>Takes back the failure <see cref="LoginRefusalAsync"/> counted in advance: only failures count.</summary>
    public async Task LoginSucceededAsync(string username, IPAddress? address)
    {
        foreach (var (limit, subject) in LoginLimits(username, address))
        {
            // Not the request's token: a client that disconnects after a right password must not keep a failure counted.
            await windows.RefundAsync(limit, subject, CancellationToken.None);
        }
    }

    private IEnumerable<(FailureLimit Limit, string Subject)> LoginLimits(string username, IPAddress? address)
    {
        var (user, client) = Subjects(username, address);
        yield return (perUsernameAndAddress, $"{user}\n{client}");
        yield return (perAddress, client);
        yield return (perUsername, user);
    }

    /// <summary>
    /// The 429 to answer when the user gave too many wrong current passwords; null when the change may go ahead, counted
    /// as a failure in advance until <see cref="PasswordChangeSucceededAsync"/>.
    /// </summary>
    public async Task<IResult?> PasswordChangeRefusalAsync(Guid userId, string username, CancellationToken cancellationToken)
    {
        var verdict = await windows.ReserveAsync(passwordChange, userId.ToString(), cancellationToken);
        if (!verdict.Limited)
        {
            return null;
        }

        if (verdict.FirstRefusal)
        {
            await AuditAsync("auth.password_change_limited", "user", userId.ToString(), new { username, failures = passwordChange.Failures,
                window_seconds = (int)passwordChange.Window.TotalSeconds }, cancellationToken);
        }

        return AuthExtensions.TooManyAttempts("Too many password attempts.", verdict.RetryAfter);
    }

    /// <summary>The current password was right: the attempt counted in advance was no failure.</summary>
    public Task PasswordChangeSucceededAsync(Guid userId) =>
        windows.RefundAsync(passwordChange, userId.ToString(), CancellationToken.None);

    private static (string User, string Client) Subjects(string username, IPAddress? address) =>
        (username.ToLowerInvariant(), FailureWindows.ClientSubject(address));

    private async Task AuditAsync(string action, string targetType, string targetId, object details, CancellationToken cancellationToken)
    {
        try
        {
            await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
            await connection.WriteAsync(Actor.System, action, targetType, targetId, details, cancellationToken: cancellationToken);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            // The refusal stands without its row: the limit protects the accounts even while the database struggles.
            logger.LogWarning(e, "Could not write the {Action} audit row for {Target}", action, targetId);
        }
    }
}
