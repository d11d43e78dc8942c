using FastEndpoints;

namespace StreamSpace.Api.Features.Shares.Get;

public sealed record ShareRequest(string ShareId);

/// <summary>GET /api/v1/shares/{shareId}: what a recipient of the link is about to see; 404 when it is not for them, 410 once it ended or expired.</summary>
public sealed class GetShareEndpoint(ShareAccess access) : Endpoint<ShareRequest, SharedSessionResponse>
{
    public override void Configure()
    {
        Get("shares/{shareId}");
        Summary(s => s.Summary = "A share as its recipient sees it: the session, its owner and template, the mode and the expiry (signed-in users it is for).");
    }

    public override async Task HandleAsync(ShareRequest request, CancellationToken cancellationToken)
    {
        var (open, refusal) = await access.FindAsync(request.ShareId, User, cancellationToken);
        if (open is null)
        {
            await Send.ResultAsync(refusal!);
            return;
        }

        var (share, session, template) = open;
        await Send.OkAsync(new SharedSessionResponse(share.Id, session.Id, session.Username ?? share.CreatedByName, session.Template,
            template?.DisplayName ?? session.Template, session.State, share.Mode, ShareRow.Utc(share.ExpiresAt)), cancellationToken);
    }
}
