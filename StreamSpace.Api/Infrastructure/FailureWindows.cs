using System.Collections.Concurrent;
using System.Net;

namespace StreamSpace.Api.Infrastructure;

/// <summary>A limit on failures: at most <paramref name="Failures"/> per key within a fixed window of <paramref name="Window"/>.</summary>
public sealed record FailureLimit(string Name, int Failures, TimeSpan Window);

/// <summary>What <see cref="FailureWindows.Check"/> found: whether the key is locked, for how long, and whether this is the
/// window's first refusal (so that a lockout is reported once, not once per refused attempt).</summary>
public readonly record struct FailureVerdict(bool Limited, TimeSpan RetryAfter, bool FirstRefusal);

/// <summary>
/// Failure limits as their users see them: <see cref="FailureWindows"/> in this process's memory (the agent hub's,
/// which must answer before any database work), or <see cref="PostgresFailureWindows"/>, shared by every replica
/// (sign-ins, so that N replicas do not give N times the guesses).
/// </summary>
public interface IFailureWindows
{
    /// <summary>Check and count in one step; see <see cref="FailureWindows.Reserve"/>.</summary>
    Task<FailureVerdict> ReserveAsync(FailureLimit limit, string subject, CancellationToken cancellationToken);

    /// <summary>Takes back a reservation of an attempt that succeeded (or was refused by another limit).</summary>
    Task RefundAsync(FailureLimit limit, string subject, CancellationToken cancellationToken);
}

/// <summary>
/// Counts failures (wrong passwords, bad agent keys) per key in fixed windows. Only failures count, so honest traffic
/// (a successful login, 10,000 agents reconnecting from one address after a restart) never uses up a limit, and a
/// lock ends with its window. The one place the API's failure limits are kept.
/// </summary>
public sealed class FailureWindows(TimeProvider time) : IFailureWindows
{
    /// <summary>Keys held at most: a flood of new keys (addresses, usernames) cannot grow memory without bound.</summary>
    public const int MaximumKeys = 100_000;

    private sealed class Window
    {
        public DateTimeOffset Ends;
        public int Failures;
        public bool Reported;
    }

    private readonly ConcurrentDictionary<string, Window> windows = new();

    public FailureVerdict Check(FailureLimit limit, string subject)
    {
        if (!windows.TryGetValue(Key(limit, subject), out var window))
        {
            return default;
        }

        lock (window)
        {
            var now = time.GetUtcNow();
            if (now >= window.Ends || window.Failures < limit.Failures)
            {
                return default;
            }

            var first = !window.Reported;
            window.Reported = true;
            return new FailureVerdict(true, window.Ends - now, first);
        }
    }

    public void Fail(FailureLimit limit, string subject)
    {
        var now = time.GetUtcNow();
        if (LiveWindow(limit, subject, now) is { } window)
        {
            lock (window)
            {
                window.Failures++;
            }
        }
    }

    /// <summary>
    /// Check and count in one step, for attempts whose outcome takes time to learn (a password hash): the attempt is
    /// counted as a failure before it runs, so a burst of parallel attempts cannot all pass the check before the
    /// first failure lands. <see cref="Refund"/> takes the count back once the attempt succeeds.
    /// </summary>
    public FailureVerdict Reserve(FailureLimit limit, string subject)
    {
        var now = time.GetUtcNow();
        if (LiveWindow(limit, subject, now) is not { } window)
        {
            return default;
        }

        lock (window)
        {
            if (window.Failures < limit.Failures)
            {
                window.Failures++;
                return default;
            }

            var first = !window.Reported;
            window.Reported = true;
            return new FailureVerdict(true, window.Ends - now, first);
        }
    }

    /// <summary>Takes back a <see cref="Reserve"/> of an attempt that succeeded (or was refused by another limit).</summary>
    public void Refund(FailureLimit limit, string subject)
    {
        if (windows.TryGetValue(Key(limit, subject), out var window))
        {
            lock (window)
            {
                if (time.GetUtcNow() < window.Ends && window.Failures > 0)
                {
                    window.Failures--;
                }
            }
        }
    }

    public Task<FailureVerdict> ReserveAsync(FailureLimit limit, string subject, CancellationToken cancellationToken) =>
        Task.FromResult(Reserve(limit, subject));

    public Task RefundAsync(FailureLimit limit, string subject, CancellationToken cancellationToken)
    {
        Refund(limit, subject);
        return Task.CompletedTask;
    }

    /// <summary>The key's window, started afresh when the last one ended; null when the table is full of live windows.</summary>
    private Window? LiveWindow(FailureLimit limit, string subject, DateTimeOffset now)
    {
        var key = Key(limit, subject);
        if (windows.Count >= MaximumKeys && !windows.ContainsKey(key))
        {
            Prune(now);
            if (windows.Count >= MaximumKeys)
            {
                // Every key is in a live window: the other limits (per address, per username) still hold.
                return null;
            }
        }

        var window = windows.GetOrAdd(key, _ => new Window { Ends = now + limit.Window });
        lock (window)
        {
            if (now >= window.Ends)
            {
                window.Ends = now + limit.Window;
                window.Failures = 0;
                window.Reported = false;
            }
        }

        return window;
    }

    private void Prune(DateTimeOffset now)
    {
        foreach (var (key, window) in windows)
        {
            if (now >= window.Ends)
            {
                windows.TryRemove(key, out _);
            }
        }
    }

    /// <summary>
    /// The subject that per-address limits count: the IPv4 address, or the /64 of an IPv6 one, since a single
    /// IPv6 client usually holds a whole /64 and could otherwise take a fresh address for every attempt.
    /// </summary>
    public static string ClientSubject(IPAddress? address)
    {
        if (address is null)
        {
            return "unknown";
        }

        if (address.IsIPv4MappedToIPv6)
        {
            return address.MapToIPv4().ToString();
        }

        if (address.AddressFamily != System.Net.Sockets.AddressFamily.InterNetworkV6)
        {
            return address.ToString();
        }

        var bytes = address.GetAddressBytes();
        Array.Clear(bytes, 8, 8);
        return $"{new IPAddress(bytes)}/64";
    }

    private static string Key(FailureLimit limit, string subject) => $"{limit.Name}\n{subject}";
}
