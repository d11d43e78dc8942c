using FastEndpoints;
using StreamSpace.Api.Features.Audit;
using StreamSpace.Api.Features.Auth;
using StreamSpace.Api.Features.Sessions;
using StreamSpace.Api.Features.Sessions.Viewers;
using StreamSpace.Api.Infrastructure;

namespace StreamSpace.Api.Features.Shares.End;

public sealed record EndShareRequest(string Id, string ShareId);

/// <summary>
/// DELETE /api/v1/sessions/{id}/shares/{shareId}: ends the share. Every viewer that came through it closes within
/// seconds, on whichever instance holds it (the viewers' revocation NOTIFY, and their own check every second).
/// </summary>
public sealed class EndShareEndpoint(SessionStore sessions, ShareStore shares, SessionViewers viewers) : Endpoint<EndShareRequest>
{
    public override void Configure()
    {
        Delete("sessions/{id}/shares/{shareId}");
        Summary(s => s.Summary = "Ends a share: its link stops working and its viewers close (close code 4411) (owner, admin).");
    }

    public override async Task HandleAsync(EndShareRequest request, CancellationToken cancellationToken)
    {
        if (await sessions.GetAsync(request.Id, User.RequiredUserId(), User.IsAdmin(), cancellationToken) is null)
        {
            await Send.ResultAsync(ApiProblem.NotFound($"No session {request.Id}."));
            return;
        }

        var actor = Actor.From(User);
        if (!await shares.EndAsync(actor, request.Id, request.ShareId, cancellationToken))
        {
            await Send.ResultAsync(ApiProblem.NotFound($"Session {request.Id} has no active share {request.ShareId}."));
            return;
        }

        await viewers.CloseShareAsync(actor, request.ShareId, $"the share was ended by {actor.Name}", CancellationToken.None);
        await Send.NoContentAsync(cancellationToken);
    }
}
