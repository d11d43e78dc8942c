using System.Text.Json;
using System.Text.Json.Serialization;

namespace StreamSpace.Contracts.Api;

/// <summary>
/// A session as the API shows it, and as each server-sent <c>session</c> event carries it. <see cref="Recording"/> tells
/// the owner the session is recorded (its template requires it, or an admin asked) while it is active.
/// </summary>
public sealed record SessionResponse(
    string Id,
    Guid UserId,
    string? Username,
    string Template,
    SessionState State,
    string? FailureReason,
    string? AgentId,
    string? Platform,
    JsonElement PlatformMetadata,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt,
    DateTimeOffset? StartedAt,
    DateTimeOffset? StoppedAt,
    AdminViewing? LastViewedByAdmin,
    bool Recording = false)
{
    [JsonIgnore]
    public bool IsFinished => State is SessionState.Stopped or SessionState.Failed;
}

/// <summary>The last time an admin opened a viewer on another user's session: the owner is shown who, and when.</summary>
public sealed record AdminViewing(string Username, DateTimeOffset At);

/// <summary><c>POST /api/v1/sessions</c>. Admins may launch for another user, by username.</summary>
public sealed record CreateSessionRequest(string Template, string? User = null);

/// <summary>
/// The answer to <c>POST /api/v1/sessions/{id}/connect</c>: a single-use ticket for the VNC WebSocket and, when the
/// session has sound (its template's audio on, its agent of protocol 4 or later), <see cref="AudioUrl"/>: the audio
/// WebSocket with a second ticket of its own, issued beside the first.
/// </summary>
public sealed record ConnectResponse(string Ticket, string Url, DateTimeOffset ExpiresAt, string? AudioUrl = null);

/// <summary>
/// An open viewer of a session, as <c>GET /api/v1/sessions/{id}/viewers</c> lists it; one that came through a share
/// names it (<see cref="ShareId"/>) and whether it only watches.
/// </summary>
public sealed record ViewerResponse(Guid Id, Guid UserId, string Username, string? Address, DateTimeOffset Since, long Bytes,
    string? ShareId = null, bool ViewOnly = false);

/// <summary>The answer to an upload: the name the file was stored under in ~/Uploads (with " (1)" and so on when the name was taken) and its size.</summary>
public sealed record UploadedFileResponse(string Name, long Size);

/// <summary>The files of the session's ~/Downloads.</summary>
public sealed record SessionFilesResponse(IReadOnlyList<StreamSpace.Contracts.Tunnel.SessionFile> Files);
