using StreamSpace.Api.Features.Tokens;
using StreamSpace.Contracts;

namespace StreamSpace.Api.Features.Sessions.Hibernate;

public sealed class HibernateSessionEndpoint(SessionStore sessions) : SessionActionEndpoint(sessions, SessionAction.Hibernate)
{
    public override void Configure()
    {
        Post("sessions/{id}/hibernate");
        Options(x => x.WithMetadata(ApiTokenAccess.SessionControl));
        Summary(s => s.Summary = "Hibernates a running session: its processes end, its home folder stays, wake starts it again.");
    }
}
