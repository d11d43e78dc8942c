using Microsoft.Extensions.Time.Testing;
using StreamSpace.Agent.Platforms;

namespace StreamSpace.Tests.Agent;

/// <summary>The session time limits both platforms enforce, on a clock the test moves.</summary>
public sealed class SessionClockTests
{
    private readonly FakeTimeProvider time = new(DateTimeOffset.Parse("2026-01-01T09:00:00Z", System.Globalization.CultureInfo.InvariantCulture));

    [Fact]
    public void A_session_a_viewer_types_into_outlives_its_idle_timeout_and_idles_out_once_the_input_stops()
    {
        using var clock = new SessionClock(time);
        clock.Running("s1", idleTimeout: TimeSpan.FromMinutes(10), maxDuration: null);

        for (var minute = 0; minute < 30; minute++)
        {
            time.Advance(TimeSpan.FromMinutes(1));
            clock.NoteInput("s1");
        }

        Assert.Empty(clock.Due());
        time.Advance(TimeSpan.FromMinutes(10) + TimeSpan.FromSeconds(1));
        Assert.Equal(new SessionLimitReached("s1", SessionLimit.IdleTimeout, TimeSpan.FromMinutes(10) + TimeSpan.FromSeconds(1)), Assert.Single(clock.Due()));
    }

    [Fact]
    public void The_maximum_duration_counts_from_when_the_session_began_running_whatever_the_input()
    {
        using var clock = new SessionClock(time);
        var began = time.GetUtcNow() - TimeSpan.FromMinutes(50);
        clock.Running("s1", idleTimeout: TimeSpan.FromMinutes(30), maxDuration: TimeSpan.FromHours(1), since: began);

        time.Advance(TimeSpan.FromMinutes(9));
        clock.NoteInput("s1");
        Assert.Empty(clock.Due());

        time.Advance(TimeSpan.FromMinutes(2));
        Assert.Equal(SessionLimit.MaxDuration, Assert.Single(clock.Due()).Limit);
    }

    [Fact]
    public void A_session_still_starting_at_its_deadline_is_due_to_fail_and_one_that_ran_in_time_is_not()
    {
        using var clock = new SessionClock(time);
        clock.Starting("slow", TimeSpan.FromMinutes(5));
        clock.Starting("quick", TimeSpan.FromMinutes(5));

        time.Advance(TimeSpan.FromMinutes(4));
        clock.Running("quick", idleTimeout: null, maxDuration: null);
        time.Advance(TimeSpan.FromMinutes(1));

        Assert.Equal(new SessionLimitReached("slow", SessionLimit.StartTimeout, TimeSpan.Zero), Assert.Single(clock.Due()));
    }

    [Fact]
    public void A_hibernated_or_stopped_session_has_no_limits_left()
    {
        using var clock = new SessionClock(time);
        clock.Running("s1", idleTimeout: TimeSpan.FromMinutes(1), maxDuration: TimeSpan.FromMinutes(2));
        clock.Forget("s1");

        time.Advance(TimeSpan.FromHours(1));
        Assert.Empty(clock.Due());
    }

    [Fact]
    public async Task Once_started_the_clock_hands_each_passed_limit_to_the_platform_every_second()
    {
        using var clock = new SessionClock(time);
        var enforced = new List<SessionLimitReached>();
        clock.Running("s1", idleTimeout: TimeSpan.FromSeconds(30), maxDuration: null);
        clock.Start(reached =>
        {
            lock (enforced)
            {
                enforced.Add(reached);
            }

            clock.Forget(reached.SessionId);
            return Task.CompletedTask;
        }, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);

        time.Advance(TimeSpan.FromSeconds(30));
        Assert.Empty(enforced);
        time.Advance(TimeSpan.FromSeconds(1));
        await StreamSpace.Tests.Infrastructure.Eventually.TrueAsync(() => Task.FromResult(enforced.Count == 1), TimeSpan.FromSeconds(5), "the idle timeout to be enforced");
        Assert.Equal(SessionLimit.IdleTimeout, enforced[0].Limit);
    }
}
