namespace StreamSpace.Contracts.Api;

/// <summary>
/// A recording of a session, as <c>GET /api/v1/admin/recordings</c> lists it (admins only). The file lives on
/// <see cref="AgentId"/>; <see cref="Recording"/> is true while the agent still records it (no end reported yet).
/// <see cref="UserId"/> is null once the owner was deleted; <see cref="Username"/> stays.
/// </summary>
public sealed record RecordingResponse(
    Guid Id,
    string SessionId,
    Guid? UserId,
    string Username,
    string Template,
    string AgentId,
    DateTimeOffset StartedAt,
    DateTimeOffset? EndedAt,
    long DurationMs,
    long Bytes,
    bool Recording);

/// <summary>The API's routes for recordings, shared by the API's tests and the web's pages.</summary>
public static class RecordingRoutes
{
    public const string List = "/api/v1/admin/recordings";

    public static string One(Guid id) => $"{List}/{id:D}";

    /// <summary>The recording file itself (<see cref="Tunnel.RecordingFormat"/>), as the player reads it.</summary>
    public static string File(Guid id) => $"{One(id)}/file";

    /// <summary>The recording as an MP4 the agent renders (<c>video/mp4</c>, an attachment).</summary>
    public static string Export(Guid id) => $"{One(id)}/export";

    /// <summary><c>POST</c>: an admin asks for a running session to be recorded from now until it stops.</summary>
    public static string RecordSession(string sessionId) => $"/api/v1/admin/sessions/{sessionId}/record";
}
