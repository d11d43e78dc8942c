using FastEndpoints;
using StreamSpace.Api.Features.Audit;
using StreamSpace.Api.Features.Auth;
using StreamSpace.Api.Features.Sessions.Get;
using StreamSpace.Api.Infrastructure;
using StreamSpace.Contracts;

namespace StreamSpace.Api.Features.Sessions;

/// <summary>Stop, hibernate and wake share their handling; each route names its action.</summary>
public abstract class SessionActionEndpoint(SessionStore sessions, SessionAction action) : Endpoint<SessionRequest, SessionResponse>
{
    public override async Task HandleAsync(SessionRequest request, CancellationToken cancellationToken)
    {
        var result = await sessions.RequestAsync(Actor.From(User), action, request.Id, User.RequiredUserId(), User.IsAdmin(), cancellationToken);
        switch (result.Change)
        {
            case SessionChange.NotFound:
                await Send.ResultAsync(ApiProblem.NotFound(result.Detail!));
                return;
            case SessionChange.IllegalTransition:
                await Send.ResultAsync(ApiProblem.Conflict(result.Detail!));
                return;
            case SessionChange.NotAllowed:
                await Send.ResultAsync(ApiProblem.Forbidden("Not in the template's groups.", result.Detail));
                return;
        }

        await Send.ResultAsync(TypedResults.Accepted($"/api/v1/sessions/{request.Id}", result.Session));
    }
}
