using StreamSpace.Api.Features.Tokens;
using StreamSpace.Contracts;

namespace StreamSpace.Api.Features.Sessions.Wake;

public sealed class WakeSessionEndpoint(SessionStore sessions) : SessionActionEndpoint(sessions, SessionAction.Wake)
{
    public override void Configure()
    {
        Post("sessions/{id}/wake");
        Options(x => x.WithMetadata(ApiTokenAccess.SessionControl));
        Summary(s => s.Summary = "Wakes a hibernated session.");
    }
}
