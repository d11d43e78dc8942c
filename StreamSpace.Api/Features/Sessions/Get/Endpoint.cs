using FastEndpoints;
using StreamSpace.Api.Features.Auth;
using StreamSpace.Api.Infrastructure;

namespace StreamSpace.Api.Features.Sessions.Get;

public sealed record SessionRequest(string Id);

public sealed class GetSessionEndpoint(SessionStore sessions) : Endpoint<SessionRequest, SessionResponse>
{
    public override void Configure()
    {
        Get("sessions/{id}");
        Summary(s => s.Summary = "One session: state, failure reason, agent, platform and timestamps.");
    }

    public override async Task HandleAsync(SessionRequest request, CancellationToken cancellationToken)
    {
        if (await sessions.GetAsync(request.Id, User.RequiredUserId(), User.IsAdmin(), cancellationToken) is { } session)
        {
            await Send.OkAsync(session, cancellationToken);
            return;
        }

        await Send.ResultAsync(ApiProblem.NotFound($"No session {request.Id}."));
    }
}
