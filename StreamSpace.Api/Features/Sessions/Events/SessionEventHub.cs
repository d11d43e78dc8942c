using System.Collections.Concurrent;
using System.Text.Json;
using System.Threading.Channels;
using Npgsql;
using StreamSpace.Api.Features.Sessions.List;
using StreamSpace.Api.Infrastructure.Database;

namespace StreamSpace.Api.Features.Sessions.Events;

/// <summary>A session changed: which one, and whose it is.</summary>
public sealed record SessionChanged(string Id, Guid UserId);

/// <summary>
/// Takes PostgreSQL's NOTIFY on session changes (through <see cref="DatabaseNotifications"/>), reads each changed
/// session once, and fans it out to live subscribers (server-sent events), who keep what they may see.
/// Notifications come from committed transactions only, from any API instance.
/// </summary>
public sealed class SessionEventHub(SessionStore sessions, SessionListCache lists, TimeProvider time, ILogger<SessionEventHub> logger)
    : BackgroundService, IDatabaseNotificationHandler
{
    /// <summary>How far before the last notification heard a catch-up looks, for clock differences and commits in flight.</summary>
    private static readonly TimeSpan CatchUpMargin = TimeSpan.FromSeconds(5);

    /// <summary>When this instance last heard a session notification (or began listening), as unix milliseconds.</summary>
    private long lastHeard = long.MinValue;

    private readonly ConcurrentDictionary<Guid, Channel<SessionResponse>> subscribers = new();
    private readonly Channel<SessionChanged> notifications = Channel.CreateUnbounded<SessionChanged>(new UnboundedChannelOptions { SingleReader = true });

    public (Guid Id, ChannelReader<SessionResponse> Changes) Subscribe()
    {
        var id = Guid.NewGuid();
        // A slow client loses the oldest changes, never the hub's memory.
        var channel = Channel.CreateBounded<SessionResponse>(new BoundedChannelOptions(256) { FullMode = BoundedChannelFullMode.DropOldest });
        subscribers[id] = channel;
        return (id, channel.Reader);
    }

    public void Unsubscribe(Guid id)
    {
        if (subscribers.TryRemove(id, out var channel))
        {
            channel.Writer.TryComplete();
        }
    }

    string IDatabaseNotificationHandler.Channel => SessionStateWriter.NotifyChannel;

    protected override Task ExecuteAsync(CancellationToken stoppingToken) => FanOutAsync(stoppingToken);

    /// <summary>One read per change, however many clients watch.</summary>
    private async Task FanOutAsync(CancellationToken stoppingToken)
    {
        await foreach (var change in notifications.Reader.ReadAllAsync(stoppingToken))
        {
            if (subscribers.IsEmpty)
            {
                continue;
            }

            try
            {
                if (await sessions.GetAsync(change.Id, change.UserId, viewerIsAdmin: true, stoppingToken) is { } session)
                {
                    foreach (var channel in subscribers.Values)
                    {
                        channel.Writer.TryWrite(session);
                    }
                }
            }
            catch (NpgsqlException e)
            {
                logger.LogWarning("Could not read changed session {SessionId} for live updates: {Reason}", change.Id, e.Message);
            }
        }
    }

    public void OnNotification(string payload)
    {
        var change = JsonSerializer.Deserialize<SessionChanged>(payload, new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower });
        if (change is null)
        {
            return;
        }

        // Before the change is fanned out: a client told of it never lists the old state.
        lists.Invalidate();
        Interlocked.Exchange(ref lastHeard, time.GetUtcNow().ToUnixTimeMilliseconds());
        notifications.Writer.TryWrite(change);
    }

    /// <summary>
    /// Listening again after a lost connection: changes NOTIFYed meanwhile were missed, so the list cache is dropped
    /// and every session changed since shortly before the last notification heard is fanned out again.
    /// </summary>
    public void OnListening()
    {
        lists.Invalidate();
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var heard = Interlocked.Exchange(ref lastHeard, now);
        if (heard != long.MinValue && !subscribers.IsEmpty)
        {
            _ = CatchUpAsync(TimeSpan.FromMilliseconds(now - heard) + CatchUpMargin);
        }
    }

    private async Task CatchUpAsync(TimeSpan lookBack)
    {
        try
        {
            await Task.Yield();
            foreach (var change in await sessions.ChangedWithinAsync(lookBack, CancellationToken.None))
            {
                notifications.Writer.TryWrite(change);
            }
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            logger.LogWarning("Could not catch up on session changes after listening again: {Reason}", e.Message);
        }
    }
}
