using System.Security.Claims;
using StreamSpace.Api.Features.Sessions.Vnc;
using StreamSpace.Api.Features.Templates;
using StreamSpace.Contracts;
using StreamSpace.Contracts.Api;
using StreamSpace.Contracts.Tunnel;

namespace StreamSpace.Api.Features.Sessions.Audio;

/// <summary>
/// The audio WebSocket's URL for a viewer about to connect: a second ticket from the same <see cref="VncTickets"/>, for
/// the same user and share as the VNC one, issued only when the session has sound to give (its template's audio on and
/// its agent of protocol <see cref="AgentProtocol.MediaVersion"/> or later). Null otherwise, so the viewer opens nothing.
/// </summary>
public sealed class AudioTickets(ITemplateCatalog templates, ISessionAgents agents, VncTickets tickets)
{
    public async Task<string?> UrlAsync(SessionResponse session, ClaimsPrincipal user, ShareGrant? share, CancellationToken cancellationToken)
    {
        if (await templates.GetAsync(session.Template, cancellationToken) is not { Audio: true }
            || session.AgentId is not { } agentId
            || await agents.LinkAsync(agentId, cancellationToken) is not { } link
            || link.ProtocolVersion < AgentProtocol.MediaVersion)
        {
            return null;
        }

        var ticket = await tickets.IssueAsync(session.Id, TicketPurpose.Audio, user, cancellationToken, share);
        return $"{AudioStreams.PathFor(session.Id)}?ticket={ticket.Value}";
    }
}
