using StreamSpace.Api.Features.Agents.Hub;

namespace StreamSpace.Api.Features.Sessions.Wake;

public sealed class WakeSessionEndpoint(SessionStore sessions, AgentHub hub) : SessionActionEndpoint(sessions, hub, "wake")
{
    public override void Configure()
    {
        Post("sessions/{id}/wake");
        Summary(s => s.Summary = "Wakes a hibernated session.");
    }
}
