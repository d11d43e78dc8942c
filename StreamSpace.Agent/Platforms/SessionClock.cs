using System.Collections.Concurrent;

namespace StreamSpace.Agent.Platforms;

/// <summary>Which of a session's time limits has passed.</summary>
public enum SessionLimit
{
    /// <summary>The session is still starting at its start deadline.</summary>
    StartTimeout,

    /// <summary>No viewer sent input to the running session for its idle timeout.</summary>
    IdleTimeout,

    /// <summary>The session has run for its maximum duration.</summary>
    MaxDuration,
}

/// <summary>A time limit a session has passed: what the platform must act on, and how long the session took.</summary>
public sealed record SessionLimitReached(string SessionId, SessionLimit Limit, TimeSpan Elapsed);

/// <summary>
/// The time limits of the sessions one platform runs, and the tick that enforces them: a start deadline while a
/// session starts, then its idle timeout (measured from its last input, or from when it began running) and its
/// maximum duration (from when it began running). The platform reports what it observes (starting, running, input,
/// gone) and decides what a passed limit does; every platform keeps time the same way through this one clock.
/// </summary>
public sealed class SessionClock(TimeProvider time) : IDisposable
{
    private static readonly TimeSpan TickInterval = TimeSpan.FromSeconds(1);

    private readonly ConcurrentDictionary<string, Limits> sessions = new();
    private readonly ConcurrentDictionary<string, DateTimeOffset> lastInput = new();
    private ITimer? timer;
    private int ticking;

    public TimeProvider Time => time;

    public DateTimeOffset Now => time.GetUtcNow();

    /// <summary>The session starts; it must run by <paramref name="since"/> (default: now) plus <paramref name="timeout"/>.</summary>
    public void Starting(string sessionId, TimeSpan timeout, DateTimeOffset? since = null) =>
        sessions[sessionId] = new Limits((since ?? Now) + timeout, null, null, null);

    /// <summary>Whether the session has a start deadline; a session found starting after an agent restart gets one once.</summary>
    public bool IsStarting(string sessionId) => sessions.TryGetValue(sessionId, out var limits) && limits.StartDeadline is not null;

    /// <summary>
    /// The session runs, since <paramref name="since"/> (default: now), which its maximum duration counts from. Its idle
    /// time counts from now: a session just found running has had no chance to receive input.
    /// </summary>
    public void Running(string sessionId, TimeSpan? idleTimeout, TimeSpan? maxDuration, DateTimeOffset? since = null)
    {
        lastInput[sessionId] = Now;
        sessions[sessionId] = new Limits(null, idleTimeout, maxDuration, since ?? Now);
    }

    /// <summary>A viewer sent input to the session.</summary>
    public void NoteInput(string sessionId) => lastInput[sessionId] = Now;

    /// <summary>The session neither starts nor runs any more (hibernated, stopped, failed): no limit applies.</summary>
    public void Forget(string sessionId)
    {
        sessions.TryRemove(sessionId, out _);
        lastInput.TryRemove(sessionId, out _);
    }

    /// <summary>The limits passed now, at most one per session: a start timeout, else an idle timeout, else the maximum duration.</summary>
    public IReadOnlyList<SessionLimitReached> Due()
    {
        var now = Now;
        var due = new List<SessionLimitReached>();
        foreach (var (id, limits) in sessions)
        {
            if (limits.StartDeadline is { } deadline)
            {
                if (now >= deadline)
                {
                    due.Add(new SessionLimitReached(id, SessionLimit.StartTimeout, now - deadline));
                }

                continue;
            }

            var idle = now - lastInput.GetOrAdd(id, now);
            if (limits.IdleTimeout is { } idleTimeout && idle > idleTimeout)
            {
                due.Add(new SessionLimitReached(id, SessionLimit.IdleTimeout, idle));
            }
            else if (limits is { MaxDuration: { } maxDuration, RunningSince: { } since } && now - since > maxDuration)
            {
                due.Add(new SessionLimitReached(id, SessionLimit.MaxDuration, now - since));
            }
        }

        return due;
    }

    /// <summary>
    /// Once a second from now on, hands the limits passed to <paramref name="enforce"/>; a tick that finds the previous
    /// one still busy skips. Called once, when the platform's hosted service starts.
    /// </summary>
    public void Start(Func<SessionLimitReached, Task> enforce, ILogger logger)
    {
        if (timer is not null)
        {
            throw new InvalidOperationException("the session clock runs already");
        }

        timer = time.CreateTimer(_ => _ = TickAsync(enforce, logger), null, TickInterval, TickInterval);
    }

    private async Task TickAsync(Func<SessionLimitReached, Task> enforce, ILogger logger)
    {
        if (Interlocked.Exchange(ref ticking, 1) == 1)
        {
            return;
        }

        try
        {
            foreach (var reached in Due())
            {
                try
                {
                    await enforce(reached);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    logger.LogWarning("Session {SessionId}: enforcing its {Limit} failed: {Reason}; trying again in a second", reached.SessionId, reached.Limit, e.Message);
                }
            }
        }
        finally
        {
            Interlocked.Exchange(ref ticking, 0);
        }
    }

    public void Dispose() => timer?.Dispose();

    private sealed record Limits(DateTimeOffset? StartDeadline, TimeSpan? IdleTimeout, TimeSpan? MaxDuration, DateTimeOffset? RunningSince);
}
