using FastEndpoints;
using StreamSpace.Api.Features.Auth;

namespace StreamSpace.Api.Features.Sessions.List;

public sealed class ListSessionsRequest
{
    [QueryParam] public string? User { get; set; }
    [QueryParam] public string? State { get; set; }
}

/// <summary>Your sessions; an admin sees everyone's, and may filter by user and state.</summary>
public sealed class ListSessionsEndpoint(SessionStore sessions, SessionListCache cache) : Endpoint<ListSessionsRequest, IReadOnlyList<SessionResponse>>
{
    public override void Configure()
    {
        Get("sessions");
        Summary(s => s.Summary = "Lists your sessions (admins: all, filtered by ?user= and ?state=).");
    }

    public override async Task HandleAsync(ListSessionsRequest request, CancellationToken cancellationToken)
    {
        var mine = User.IsAdmin() ? (Guid?)null : User.RequiredUserId();
        var username = User.IsAdmin() ? request.User : null;
        var json = await cache.GetAsync(new(mine, username, request.State), () => sessions.ListAsync(mine, username, request.State, cancellationToken));
        HttpContext.Response.StatusCode = StatusCodes.Status200OK;
        HttpContext.Response.ContentType = "application/json; charset=utf-8";
        HttpContext.Response.ContentLength = json.Length;
        await HttpContext.Response.Body.WriteAsync(json, cancellationToken);
    }
}
