using System.Threading.RateLimiting;

namespace StreamSpace.Api.Features.Auth;

/// <summary>
/// Limits login attempts per username, so that guessing one account's password from many addresses is slow too.
/// The per-address limit is the ASP.NET rate-limiter policy <see cref="AuthExtensions.LoginPolicy"/>.
/// </summary>
public sealed class LoginThrottle(ApiSettings settings) : IDisposable
{
    private readonly PartitionedRateLimiter<string> limiter = PartitionedRateLimiter.Create<string, string>(username =>
        RateLimitPartition.GetFixedWindowLimiter(username.ToLowerInvariant(), _ => AuthExtensions.LoginWindow(settings)));

    /// <summary>Takes one attempt for the username; when none is left, says how long to wait.</summary>
    public bool TryAttempt(string username, out TimeSpan retryAfter)
    {
        using var lease = limiter.AttemptAcquire(username);
        retryAfter = lease.TryGetMetadata(MetadataName.RetryAfter, out var wait) ? wait : TimeSpan.FromMinutes(1);
        return lease.IsAcquired;
    }

    public void Dispose() => limiter.Dispose();
}
