using System.Collections.Concurrent;
using StreamSpace.Agent.Platforms;
using StreamSpace.Settings;

namespace StreamSpace.Agent.Commands;

/// <summary>
/// Stops sessions that run here but that the control plane does not own (it lists them in welcome): left over from a
/// session deleted while the agent was away, or from a database restored from backup. They get a grace period first,
/// because a welcome can race a start command, and any command for the session claims it back.
/// </summary>
public sealed class OrphanReaper(ISessionPlatform platform, AgentSettings settings, TimeProvider time, ILogger<OrphanReaper> logger) : IDisposable
{
    private readonly ConcurrentDictionary<string, ITimer> pending = new();

    /// <summary>The control plane's latest word: these are unowned, and every other session is owned again.</summary>
    public void Schedule(IReadOnlyList<string> unowned)
    {
        foreach (var sessionId in pending.Keys.Except(unowned))
        {
            Claim(sessionId);
        }

        foreach (var sessionId in unowned)
        {
            if (pending.ContainsKey(sessionId))
            {
                continue;
            }

            var timer = time.CreateTimer(_ => _ = ReapAsync(sessionId), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            if (pending.TryAdd(sessionId, timer))
            {
                logger.LogWarning("Session {SessionId} runs here but the control plane does not own it; stopping it in {Grace} unless it is claimed",
                    sessionId, Duration.Format(settings.OrphanGracePeriod));
                timer.Change(settings.OrphanGracePeriod, Timeout.InfiniteTimeSpan);
            }
            else
            {
                timer.Dispose();
            }
        }
    }

    /// <summary>A command named the session: the control plane owns it after all.</summary>
    public void Claim(string sessionId)
    {
        if (pending.TryRemove(sessionId, out var timer))
        {
            timer.Dispose();
            logger.LogInformation("Session {SessionId} is owned by the control plane again; it keeps running", sessionId);
        }
    }

    private async Task ReapAsync(string sessionId)
    {
        if (!pending.TryRemove(sessionId, out var timer))
        {
            return;
        }

        timer.Dispose();
        try
        {
            await platform.StopAsync(sessionId, CancellationToken.None);
            logger.LogWarning("Stopped session {SessionId}: the control plane has not owned it for {Grace}", sessionId, Duration.Format(settings.OrphanGracePeriod));
        }
        catch (Exception e)
        {
            logger.LogWarning("Could not stop unowned session {SessionId}: {Reason}; the next welcome lists it again", sessionId, e.Message);
        }
    }

    public void Dispose()
    {
        foreach (var sessionId in pending.Keys)
        {
            if (pending.TryRemove(sessionId, out var timer))
            {
                timer.Dispose();
            }
        }
    }
}
