using System.Collections.Concurrent;
using System.Text.Json;
using System.Threading.Channels;
using Npgsql;

namespace StreamSpace.Api.Features.Sessions.Events;

/// <summary>A session changed: which one, and whose it is.</summary>
public sealed record SessionChanged(string Id, Guid UserId);

/// <summary>
/// Listens to PostgreSQL's NOTIFY on session changes and fans them out to live subscribers (server-sent events).
/// Notifications come from committed transactions only, from any API instance.
/// </summary>
public sealed class SessionEventHub(NpgsqlDataSource dataSource, ILogger<SessionEventHub> logger) : BackgroundService
{
    private readonly ConcurrentDictionary<Guid, Channel<SessionChanged>> subscribers = new();

    public (Guid Id, ChannelReader<SessionChanged> Changes) Subscribe()
    {
        var id = Guid.NewGuid();
        // A slow client loses the oldest changes, never the hub's memory; it re-reads the session anyway.
        var channel = Channel.CreateBounded<SessionChanged>(new BoundedChannelOptions(256) { FullMode = BoundedChannelFullMode.DropOldest });
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

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await using var connection = await dataSource.OpenConnectionAsync(stoppingToken);
                connection.Notification += (_, e) => Publish(e.Payload);
                await using (var listen = new NpgsqlCommand($"LISTEN {SessionStateWriter.NotifyChannel}", connection))
                {
                    await listen.ExecuteNonQueryAsync(stoppingToken);
                }

                while (!stoppingToken.IsCancellationRequested)
                {
                    await connection.WaitAsync(stoppingToken);
                }
            }
            catch (Exception e) when (e is NpgsqlException or IOException && !stoppingToken.IsCancellationRequested)
            {
                logger.LogWarning("Live session updates paused: {Reason}; retrying in 2s", e.Message);
                await Task.Delay(TimeSpan.FromSeconds(2), stoppingToken);
            }
        }
    }

    private void Publish(string payload)
    {
        var change = JsonSerializer.Deserialize<SessionChanged>(payload, new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower });
        if (change is null)
        {
            return;
        }

        foreach (var channel in subscribers.Values)
        {
            channel.Writer.TryWrite(change);
        }
    }
}
