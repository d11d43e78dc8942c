using Npgsql;

namespace StreamSpace.Api.Infrastructure.Database;

/// <summary>Something that reacts to a PostgreSQL NOTIFY channel, whichever API instance sent it.</summary>
public interface IDatabaseNotificationHandler
{
    string Channel { get; }

    /// <summary>Runs on the one listening connection, so it must not block: hand slow work off.</summary>
    void OnNotification(string payload);

    /// <summary>
    /// Called after every (re)LISTEN, also the first: notifications sent while the connection was being re-opened are
    /// lost, so a handler that keeps state derived from them catches up here (re-reads, forgets caches). Must not block.
    /// </summary>
    void OnListening()
    {
    }
}

/// <summary>
/// The API's one LISTEN connection: it listens on every handler's channel and dispatches each notification by
/// channel, so one pooled connection serves all of them however many features listen. Notifications come from
/// committed transactions only, from any API instance. While the connection is being re-opened notifications are
/// lost, so no handler may be the only way a change takes effect.
/// </summary>
public sealed class DatabaseNotifications(NpgsqlDataSource dataSource, IEnumerable<IDatabaseNotificationHandler> handlers,
    ILogger<DatabaseNotifications> logger) : BackgroundService
{
    private readonly ILookup<string, IDatabaseNotificationHandler> byChannel = handlers.ToLookup(h => h.Channel);
    private readonly IDatabaseNotificationHandler[] handlers = [.. handlers];

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (byChannel.Count == 0)
        {
            return;
        }

        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await using var connection = await dataSource.OpenConnectionAsync(stoppingToken);
                connection.Notification += (_, e) => Dispatch(e.Channel, e.Payload);
                await using (var listen = new NpgsqlCommand(string.Join("; ", byChannel.Select(g => $"LISTEN {g.Key}")), connection))
                {
                    await listen.ExecuteNonQueryAsync(stoppingToken);
                }

                foreach (var handler in handlers)
                {
                    try
                    {
                        handler.OnListening();
                    }
                    catch (Exception e) when (e is not OutOfMemoryException)
                    {
                        logger.LogError(e, "Catching up after listening again failed in {Handler}", handler.GetType().Name);
                    }
                }

                while (!stoppingToken.IsCancellationRequested)
                {
                    await connection.WaitAsync(stoppingToken);
                }
            }
            catch (Exception e) when (e is NpgsqlException or IOException && !stoppingToken.IsCancellationRequested)
            {
                logger.LogWarning("Listening for database notifications ({Channels}) paused: {Reason}; retrying in 2s",
                    string.Join(", ", byChannel.Select(g => g.Key)), e.Message);
                await Task.Delay(TimeSpan.FromSeconds(2), stoppingToken);
            }
        }
    }

    private void Dispatch(string channel, string payload)
    {
        foreach (var handler in byChannel[channel])
        {
            try
            {
                handler.OnNotification(payload);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // One handler's bad payload must not stop the others, nor the listening connection.
                logger.LogError(e, "Handling a notification on {Channel} failed", channel);
            }
        }
    }
}
