using StreamSpace.Api.Features.Tokens;
using StreamSpace.Contracts;

namespace StreamSpace.Api.Features.Sessions.Stop;

public sealed class StopSessionEndpoint(SessionStore sessions) : SessionActionEndpoint(sessions, SessionAction.Stop)
{
    public override void Configure()
    {
        Delete("sessions/{id}");
        Options(x => x.WithMetadata(ApiTokenAccess.SessionControl));
        Summary(s => s.Summary = "Stops a session; its processes end, the user's home folder stays.");
    }
}
