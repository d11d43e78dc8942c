using StreamSpace.Contracts.Api;
using StreamSpace.Web.Services.Api;

namespace StreamSpace.Web.Services.Sessions;

/// <summary>Keeps a page's sessions live from the API's server-sent events, consumed here on the server.</summary>
public static class LiveSessions
{
    /// <summary>
    /// Calls <paramref name="onChange"/> for every session event until <paramref name="cancellationToken"/> is cancelled.
    /// When the stream drops it reconnects and calls <paramref name="onResync"/>, since changes may have been missed meanwhile.
    /// </summary>
    public static async Task RunAsync(ApiSession api, Func<SessionResponse, Task> onChange, Func<Task> onResync, ILogger logger,
        CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await foreach (var session in api.WatchSessionsAsync(cancellationToken))
                {
                    await onChange(session);
                }
            }
            catch (Exception e) when (e is HttpRequestException or IOException && !cancellationToken.IsCancellationRequested)
            {
                logger.LogDebug(e, "The session events stream dropped; reconnecting.");
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }

            try
            {
                await Task.Delay(TimeSpan.FromSeconds(2), cancellationToken);
                await onResync();
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>A short, readable age: "12 s", "5 min", "3 h", "2 d".</summary>
    public static string Age(DateTimeOffset since, DateTimeOffset now)
    {
        var age = now - since;
        return age.TotalSeconds < 60 ? $"{Math.Max(0, (int)age.TotalSeconds)} s"
            : age.TotalMinutes < 60 ? $"{(int)age.TotalMinutes} min"
            : age.TotalHours < 48 ? $"{(int)age.TotalHours} h"
            : $"{(int)age.TotalDays} d";
    }

    /// <summary>The path of the viewer; open it with a full page load, since it runs a script module.</summary>
    public static string ViewerPath(string id) => $"sessions/{Uri.EscapeDataString(id)}/view";
}
