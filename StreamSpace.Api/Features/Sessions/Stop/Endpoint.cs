using StreamSpace.Api.Features.Agents.Hub;
using StreamSpace.Contracts;

namespace StreamSpace.Api.Features.Sessions.Stop;

public sealed class StopSessionEndpoint(SessionStore sessions, AgentHub hub) : SessionActionEndpoint(sessions, hub, SessionAction.Stop)
{
    public override void Configure()
    {
        Delete("sessions/{id}");
        Summary(s => s.Summary = "Stops a session; its processes end, the user's home folder stays.");
    }
}
