using FastEndpoints;
using StreamSpace.Api.Features.Audit;
using StreamSpace.Api.Features.Auth;
using StreamSpace.Api.Infrastructure;

namespace StreamSpace.Api.Features.Sessions.Viewers.Revoke;

public sealed record RevokeViewerRequest(string Id, Guid ViewerId);

/// <summary>DELETE /api/v1/sessions/{id}/viewers/{viewerId}: closes one viewer, on whichever API instance holds it.</summary>
public sealed class RevokeViewerEndpoint(SessionStore sessions, SessionViewers viewers) : Endpoint<RevokeViewerRequest>
{
    public override void Configure()
    {
        Delete("sessions/{id}/viewers/{viewerId}");
        Summary(s => s.Summary = "Closes one open VNC viewer of the session (close code 4403); the others stay open (owner, admin).");
    }

    public override async Task HandleAsync(RevokeViewerRequest request, CancellationToken cancellationToken)
    {
        if (await sessions.GetAsync(request.Id, User.RequiredUserId(), User.IsAdmin(), cancellationToken) is null)
        {
            await Send.ResultAsync(ApiProblem.NotFound($"No session {request.Id}."));
            return;
        }

        if (!await viewers.RevokeAsync(Actor.From(User), request.Id, request.ViewerId, cancellationToken))
        {
            await Send.ResultAsync(ApiProblem.NotFound($"Session {request.Id} has no open viewer {request.ViewerId}."));
            return;
        }

        await Send.NoContentAsync(cancellationToken);
    }
}
