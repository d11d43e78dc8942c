using System.Text.Json;
using StreamSpace.Api.Features.Auth;

namespace StreamSpace.Api.Features.Sessions.Events;

/// <summary>
/// GET /api/v1/sessions/events: server-sent events, one <c>session</c> event with the session's current view
/// for every change to a session the caller may see (their own; an admin's: all).
/// </summary>
public static class SessionEventStream
{
    public const string Path = "/api/v1/sessions/events";

    public static async Task HandleAsync(HttpContext context, SessionEventHub hub)
    {
        var viewerId = context.User.RequiredUserId();
        var isAdmin = context.User.IsAdmin();
        context.Response.Headers.ContentType = "text/event-stream";
        context.Response.Headers.CacheControl = "no-store";
        await context.Response.WriteAsync(": connected\n\n", context.RequestAborted);
        await context.Response.Body.FlushAsync(context.RequestAborted);

        var (subscription, changes) = hub.Subscribe();
        try
        {
            while (!context.RequestAborted.IsCancellationRequested)
            {
                using var keepAlive = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted);
                keepAlive.CancelAfter(TimeSpan.FromSeconds(15));
                SessionView session;
                try
                {
                    session = await changes.ReadAsync(keepAlive.Token);
                }
                catch (OperationCanceledException) when (!context.RequestAborted.IsCancellationRequested)
                {
                    await context.Response.WriteAsync(": keep-alive\n\n", context.RequestAborted);
                    await context.Response.Body.FlushAsync(context.RequestAborted);
                    continue;
                }

                if (!isAdmin && session.UserId != viewerId)
                {
                    continue;
                }

                var json = JsonSerializer.Serialize(session, SessionJson);
                await context.Response.WriteAsync($"event: session\ndata: {json}\n\n", context.RequestAborted);
                await context.Response.Body.FlushAsync(context.RequestAborted);
            }
        }
        catch (OperationCanceledException)
        {
            // The client went away.
        }
        finally
        {
            hub.Unsubscribe(subscription);
        }
    }

    private static readonly JsonSerializerOptions SessionJson = new(JsonSerializerDefaults.Web) { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };
}
