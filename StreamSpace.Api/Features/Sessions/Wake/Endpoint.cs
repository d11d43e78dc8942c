using StreamSpace.Contracts;

namespace StreamSpace.Api.Features.Sessions.Wake;

public sealed class WakeSessionEndpoint(SessionStore sessions) : SessionActionEndpoint(sessions, SessionAction.Wake)
{
    public override void Configure()
    {
        Post("sessions/{id}/wake");
        Summary(s => s.Summary = "Wakes a hibernated session.");
    }
}
