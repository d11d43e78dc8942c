using System.Security.Claims;
using StreamSpace.Api.Features.Auth;
using StreamSpace.Api.Features.Sessions;
using StreamSpace.Api.Features.Sessions.Vnc;
using StreamSpace.Api.Features.Sessions.Viewers;
using StreamSpace.Api.Features.Templates;
using StreamSpace.Api.Features.Users;
using StreamSpace.Api.Infrastructure;
using StreamSpace.Contracts;

namespace StreamSpace.Api.Features.Shares;

/// <summary>A share a user may open now, with its session and the session's template (null once deleted).</summary>
public sealed record OpenableShare(ShareRow Share, SessionResponse Session, TemplateRow? Template);

/// <summary>
/// Who may share and open shares, in one place: the global switch (SHARING) and the template's, the share's users,
/// its end and expiry, and whether the session's agent can sign a viewer in view-only.
/// </summary>
public sealed class ShareAccess(ApiSettings settings, ShareStore shares, SessionStore sessions, ITemplateCatalog templates, ISessionAgents agents,
    IUserAccounts users) : IShareStatus
{
    public const string AgentTooOld = "The session's agent is too old to share view-only; upgrade the agent.";

    /// <summary>403 naming the switch that turns sharing off for the session, or null while sharing is on.</summary>
    public IResult? SwitchedOff(SessionResponse session, TemplateRow? template) =>
        settings.Sharing == SharingSwitch.Disabled
            ? ApiProblem.Forbidden("Sharing is turned off.", "Sharing is turned off on this StreamSpace (SHARING=disabled).")
            : template is { Sharing: false }
                ? ApiProblem.Forbidden("Sharing is turned off.", $"Sharing is turned off for the template '{session.Template}'.")
                : null;

    /// <summary>409 when a view-only viewer cannot be signed in through the session's agent (protocol older than view-only), else null.</summary>
    public async Task<IResult?> ViewOnlyRefusalAsync(SessionResponse session, bool viewOnly, CancellationToken cancellationToken) =>
        viewOnly && session.AgentId is { } agentId && await agents.LinkAsync(agentId, cancellationToken) is { } link
            && link.ProtocolVersion < AgentProtocol.ViewOnlyVersion
            ? ApiProblem.Conflict(AgentTooOld)
            : null;

    public Task<TemplateRow?> TemplateAsync(SessionResponse session, CancellationToken cancellationToken) => templates.GetAsync(session.Template, cancellationToken);

    /// <summary>
    /// The share, when <paramref name="user"/> may open it; otherwise the answer: 404 when there is no such share or it
    /// is not for this user (nothing tells them it exists), 410 once it ended or expired.
    /// </summary>
    public async Task<(OpenableShare? Share, IResult? Refusal)> FindAsync(string shareId, ClaimsPrincipal user, CancellationToken cancellationToken)
    {
        var share = shareId.Length <= 64 ? await shares.FindAsync(shareId, cancellationToken) : null;
        if (share is null || !(share.Admits(user.RequiredUserId()) || user.IsAdmin()))
        {
            return (null, ApiProblem.NotFound("No such share, or it is not shared with you."));
        }

        var (session, title, detail) = await StandingAsync(share, cancellationToken);
        if (session is null)
        {
            return (null, ApiProblem.Gone(title!, detail!));
        }

        return (new OpenableShare(share, session, await TemplateAsync(session, cancellationToken)), null);
    }

    /// <summary>Everything that refuses a new viewer of an open share: the switches, the session not running, an agent too old for view-only.</summary>
    public async Task<IResult?> ViewerRefusalAsync(OpenableShare open, CancellationToken cancellationToken)
    {
        if (SwitchedOff(open.Session, open.Template) is { } off)
        {
            return off;
        }

        if (open.Session.State != SessionState.Running)
        {
            return ApiProblem.Conflict($"The session is {open.Session.State.ToName()}; it can be viewed once it is running.");
        }

        return await ViewOnlyRefusalAsync(open.Session, open.Share.ViewOnly, cancellationToken);
    }

    public static ShareGrant Grant(ShareRow share) => new(share.Id, share.ViewOnly);

    /// <summary>Why the share no longer stands, for viewers that came through it (checked every second), or null while it does.</summary>
    public async Task<string?> EndedAsync(string shareId, CancellationToken cancellationToken) =>
        await shares.FindAsync(shareId, cancellationToken) is { } share
            ? (await StandingAsync(share, cancellationToken)) is { Session: null } ended
                ? share.EndedReason ?? $"{ended.Title} {ended.Detail}"
                : null
            : "This share has ended.";

    /// <summary>
    /// The shared session while the share stands; otherwise why not. A share stands until it ends or expires, while its
    /// session has not stopped, and only while whoever created it may still share the session: a disabled or deleted
    /// creator, or an admin who is one no longer, takes their shares with them.
    /// </summary>
    private async Task<(SessionResponse? Session, string? Title, string? Detail)> StandingAsync(ShareRow share, CancellationToken cancellationToken)
    {
        if (share.EndedReason is { } ended)
        {
            return (null, ended, share.EndedAt is null ? "Ask its owner for a new link." : $"It was ended by {share.EndedBy}.");
        }

        if (await users.FindByIdAsync(share.CreatedBy, cancellationToken) is not { Disabled: false } creator
            || await sessions.GetAsync(share.SessionId, creator.Id, creator.Role == UserRoles.Admin, cancellationToken) is not { } session)
        {
            return (null, "This share has ended.", "Whoever shared the session can no longer share it.");
        }

        return session.State is SessionState.Stopping or SessionState.Stopped or SessionState.Failed
            ? (null, "This share has ended.", "The session has stopped.")
            : (session, null, null);
    }
}
