using FastEndpoints;
using StreamSpace.Api.Features.Auth;
using StreamSpace.Api.Features.Sessions;
using StreamSpace.Api.Features.Sessions.Get;
using StreamSpace.Api.Infrastructure;

namespace StreamSpace.Api.Features.Shares.List;

/// <summary>GET /api/v1/sessions/{id}/shares: the session's shares that still admit viewers (owner, admin).</summary>
public sealed class ListSharesEndpoint(SessionStore sessions, ShareStore shares) : Endpoint<SessionRequest, IReadOnlyList<ShareResponse>>
{
    public override void Configure()
    {
        Get("sessions/{id}/shares");
        Summary(s => s.Summary = "The session's active shares: link, mode, expiry and users (owner, admin).");
    }

    public override async Task HandleAsync(SessionRequest request, CancellationToken cancellationToken)
    {
        if (await sessions.GetAsync(request.Id, User.RequiredUserId(), User.IsAdmin(), cancellationToken) is null)
        {
            await Send.ResultAsync(ApiProblem.NotFound($"No session {request.Id}."));
            return;
        }

        await Send.OkAsync([.. (await shares.ActiveAsync(request.Id, cancellationToken)).Select(s => s.ToResponse())], cancellationToken);
    }
}
