using FastEndpoints;
using StreamSpace.Api.Features.Auth;
using StreamSpace.Api.Features.Sessions.Get;
using StreamSpace.Api.Infrastructure;

namespace StreamSpace.Api.Features.Sessions.Viewers.List;

/// <summary>GET /api/v1/sessions/{id}/viewers: who is watching the session now, for its owner and admins.</summary>
public sealed class ListViewersEndpoint(SessionStore sessions, SessionViewers viewers) : Endpoint<SessionRequest, IReadOnlyList<ViewerResponse>>
{
    public override void Configure()
    {
        Get("sessions/{id}/viewers");
        Summary(s => s.Summary = "The session's open VNC viewers: viewer id, user, address (to admins, and the viewer's own), since and bytes carried (owner, admin).");
    }

    public override async Task HandleAsync(SessionRequest request, CancellationToken cancellationToken)
    {
        if (await sessions.GetAsync(request.Id, User.RequiredUserId(), User.IsAdmin(), cancellationToken) is null)
        {
            await Send.ResultAsync(ApiProblem.NotFound($"No session {request.Id}."));
            return;
        }

        // Another user's network address is for admins: an owner sees who watches, not where from.
        var rows = await viewers.ListAsync(request.Id, cancellationToken);
        await Send.OkAsync(User.IsAdmin() ? rows : [.. rows.Select(v => v.UserId == User.RequiredUserId() ? v : v with { Address = null })], cancellationToken);
    }
}
