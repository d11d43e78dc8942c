using System.Text.Json;
using StreamSpace.Api.Features.Auth;

namespace StreamSpace.Api.Features.Sessions.Events;

/// <summary>
/// GET /api/v1/sessions/events: server-sent events, one <c>session</c> event with the session's current view
/// for every change to a session the caller may see (their own; an admin's: all). The stream ends within seconds
/// once its principal no longer stands (token expired or revoked, user disabled, deleted or given another role):
/// the token was checked once, at the start, and a stream must not outlive what that check allowed.
/// </summary>
public static class SessionEventStream
{
    public const string Path = "/api/v1/sessions/events";

    /// <summary>How often the principal is checked again; <see cref="ActiveUserCheck"/> caches, so this is cheap.</summary>
    internal static readonly TimeSpan RecheckEvery = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan KeepAliveEvery = TimeSpan.FromSeconds(15);

    public static async Task HandleAsync(HttpContext context, SessionEventHub hub, ActiveUserCheck check, ILogger<SessionEventHub> logger)
    {
        var viewerId = context.User.RequiredUserId();
        var isAdmin = context.User.IsAdmin();
        context.Response.Headers.ContentType = "text/event-stream";
        context.Response.Headers.CacheControl = "no-store";
        await context.Response.WriteAsync(": connected\n\n", context.RequestAborted);
        await context.Response.Body.FlushAsync(context.RequestAborted);

        var (subscription, changes) = hub.Subscribe();
        var lastWrite = DateTimeOffset.UtcNow;
        try
        {
            while (!context.RequestAborted.IsCancellationRequested)
            {
                if (await check.RejectionAsync(context.User, context.RequestAborted) is { } rejection)
                {
                    // The client reconnects with the token it holds now, and sees what that token allows.
                    logger.LogInformation("Closing the session events stream of {User}: {Reason}", context.User.Identity?.Name, rejection);
                    await context.Response.WriteAsync($": closed: {rejection}\n\n", context.RequestAborted);
                    await context.Response.Body.FlushAsync(context.RequestAborted);
                    return;
                }

                using var wait = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted);
                wait.CancelAfter(RecheckEvery);
                SessionResponse session;
                try
                {
                    session = await changes.ReadAsync(wait.Token);
                }
                catch (OperationCanceledException) when (!context.RequestAborted.IsCancellationRequested)
                {
                    if (DateTimeOffset.UtcNow - lastWrite >= KeepAliveEvery)
                    {
                        await context.Response.WriteAsync(": keep-alive\n\n", context.RequestAborted);
                        await context.Response.Body.FlushAsync(context.RequestAborted);
                        lastWrite = DateTimeOffset.UtcNow;
                    }

                    continue;
                }

                if (!isAdmin && session.UserId != viewerId)
                {
                    continue;
                }

                var json = JsonSerializer.Serialize(session, ApiJson.Options);
                await context.Response.WriteAsync($"event: session\ndata: {json}\n\n", context.RequestAborted);
                await context.Response.Body.FlushAsync(context.RequestAborted);
                lastWrite = DateTimeOffset.UtcNow;
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
}
