using FastEndpoints;
using StreamSpace.Api.Features.Sessions.Audio;
using StreamSpace.Api.Features.Sessions.Vnc;
using StreamSpace.Api.Features.Shares.Get;

namespace StreamSpace.Api.Features.Shares.Connect;

/// <summary>
/// POST /api/v1/shares/{shareId}/connect: a ticket for the shared session's VNC WebSocket, like the owner's, bound to
/// the session, the recipient and the share; a view-only share's viewer is signed in to Xvnc with its view-only password.
/// </summary>
public sealed class ConnectShareEndpoint(ShareAccess access, VncTickets tickets, AudioTickets audio) : Endpoint<ShareRequest, ConnectResponse>
{
    public override void Configure()
    {
        Post("shares/{shareId}/connect");
        Summary(s => s.Summary = "Returns a single-use, 30-second ticket for the shared session's VNC stream; 403 when sharing is turned off, 410 once the share ended.");
    }

    public override async Task HandleAsync(ShareRequest request, CancellationToken cancellationToken)
    {
        var (open, refusal) = await access.FindAsync(request.ShareId, User, cancellationToken);
        // Without a share, FindAsync's refusal stands and the viewer's checks are not run.
        refusal ??= await access.ViewerRefusalAsync(open!, cancellationToken);
        if (refusal is not null)
        {
            await Send.ResultAsync(refusal);
            return;
        }

        var grant = ShareAccess.Grant(open!.Share);
        var ticket = await tickets.IssueAsync(open.Session.Id, TicketPurpose.Vnc, User, cancellationToken, grant);
        await Send.OkAsync(new ConnectResponse(ticket.Value, $"/vnc/{open.Session.Id}?ticket={ticket.Value}", ticket.ExpiresAt,
            await audio.UrlAsync(open.Session, User, grant, cancellationToken)), cancellationToken);
    }
}
