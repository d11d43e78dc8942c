namespace StreamSpace.Contracts.Api;

/// <summary>What a share lets its viewers do: watch only (the session's VNC server ignores their input), or also type and point.</summary>
public static class ShareModes
{
    public const string ViewOnly = "view_only";
    public const string Interactive = "interactive";

    public static readonly IReadOnlySet<string> All = new HashSet<string> { ViewOnly, Interactive };
}

/// <summary>
/// <c>POST /api/v1/sessions/{id}/shares</c>: <see cref="Mode"/> (default view_only), how long the share lasts
/// (default 60 minutes, at most 7 days), and optionally the usernames it is for (otherwise any signed-in user with the link).
/// </summary>
public sealed record CreateShareRequest(string? Mode = null, int? ExpiresInMinutes = null, IReadOnlyList<string>? Users = null);

/// <summary>A share as its owner sees it. <see cref="Url"/> is the web app's page for it, relative to the web's origin.</summary>
public sealed record ShareResponse(
    string Id,
    string SessionId,
    string Url,
    string Mode,
    DateTimeOffset ExpiresAt,
    IReadOnlyList<string>? Users,
    string CreatedBy,
    DateTimeOffset CreatedAt);

/// <summary><c>GET /api/v1/shares/{id}</c>: what the recipient is about to see, and whose it is.</summary>
public sealed record SharedSessionResponse(
    string Id,
    string SessionId,
    string Owner,
    string Template,
    string TemplateDisplayName,
    SessionState State,
    string Mode,
    DateTimeOffset ExpiresAt);
