using StreamSpace.Api.Features.Tokens;
using FastEndpoints;
using StreamSpace.Api.Features.Auth;
using StreamSpace.Api.Features.Sessions.Get;
using StreamSpace.Api.Features.Sessions.Audio;
using StreamSpace.Api.Features.Sessions.Vnc;
using StreamSpace.Api.Infrastructure;
using StreamSpace.Contracts;

namespace StreamSpace.Api.Features.Sessions.Connect;

/// <summary>Issues a ticket for the session's VNC WebSocket at /vnc/{id}, and one for its audio WebSocket when it has sound.</summary>
public sealed class ConnectSessionEndpoint(SessionStore sessions, VncTickets tickets, AudioTickets audio) : Endpoint<SessionRequest, ConnectResponse>
{
    public override void Configure()
    {
        Post("sessions/{id}/connect");
        Options(x => x.WithMetadata(ApiTokenAccess.SessionControl));
        Summary(s => s.Summary = "Returns a single-use, 30-second ticket and the WebSocket URL of the session's VNC stream.");
    }

    public override async Task HandleAsync(SessionRequest request, CancellationToken cancellationToken)
    {
        var session = await sessions.GetAsync(request.Id, User.RequiredUserId(), User.IsAdmin(), cancellationToken);
        if (session is null)
        {
            await Send.ResultAsync(ApiProblem.NotFound($"No session {request.Id}."));
            return;
        }

        if (session.State != SessionState.Running)
        {
            await Send.ResultAsync(ApiProblem.Conflict($"The session is {session.State.ToName()}; it can be viewed once it is running."));
            return;
        }

        var ticket = await tickets.IssueAsync(session.Id, TicketPurpose.Vnc, User, cancellationToken);
        await Send.OkAsync(new ConnectResponse(ticket.Value, $"/vnc/{session.Id}?ticket={ticket.Value}", ticket.ExpiresAt,
            await audio.UrlAsync(session, User, share: null, cancellationToken)), cancellationToken);
    }
}
