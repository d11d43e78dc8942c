using FastEndpoints;
using StreamSpace.Api.Features.Audit;
using StreamSpace.Api.Features.Auth;
using StreamSpace.Api.Features.Sessions;
using StreamSpace.Api.Infrastructure;
using StreamSpace.Contracts;

namespace StreamSpace.Api.Features.Recordings.RecordSession;

/// <summary>
/// An admin has a running session recorded from now until it stops, whatever its template says. The session is marked
/// (its owner sees the badge), and its agent is asked now and again whenever it reconnects.
/// </summary>
public sealed class RecordSessionEndpoint(IRecordedSessions sessions, ISessionAgents agents, SessionStore store) : EndpointWithoutRequest<SessionResponse>
{
    public override void Configure()
    {
        Post("admin/sessions/{id}/record");
        Roles(UserRoles.Admin);
        Summary(s => s.Summary = "Records a running session until it stops (admin only).");
    }

    public override async Task HandleAsync(CancellationToken cancellationToken)
    {
        var id = Route<string>("id")!;
        if (await sessions.FindAsync(id, cancellationToken) is not { } session)
        {
            await Send.ResultAsync(ApiProblem.NotFound($"No session {id}."));
            return;
        }

        if (session.State != SessionState.Running || session.AgentId is not { } agentId)
        {
            await Send.ResultAsync(ApiProblem.Conflict($"The session is {session.State.ToName()}; only a running session can be recorded."));
            return;
        }

        if (await agents.LinkAsync(agentId, cancellationToken) is not { } link)
        {
            await Send.ResultAsync(ApiProblem.Unavailable("The session's agent is not online.", "Try again once it has reconnected."));
            return;
        }

        if (link.ProtocolVersion < AgentProtocol.MediaVersion)
        {
            await Send.ResultAsync(ApiProblem.Conflict(
                $"The session's agent speaks protocol {link.ProtocolVersion}; recording needs {AgentProtocol.MediaVersion} or later. Upgrade the agent."));
            return;
        }

        await sessions.MarkRecordedAsync(id, Actor.From(User), cancellationToken);
        // Marked first: should this send miss the agent (it just went away), its reconnect asks again.
        await agents.SendAsync(agentId, new RecordSessionMessage(id), CancellationToken.None);
        await Send.OkAsync((await store.GetAsync(id, User.RequiredUserId(), viewerIsAdmin: true, cancellationToken))!, cancellationToken);
    }
}
