using System.Text.Json;

namespace StreamSpace.Web.Features.Api;

/// <summary>A catalog entry (<c>GET /api/v1/templates</c>); the admin page edits the fields it shows.</summary>
public sealed record TemplateDto(
    string Name,
    string DisplayName,
    string? Description,
    string? Category,
    string? Icon,
    string? Image,
    string? Command,
    int? VncPort,
    TemplateResourcesDto? Resources,
    // Kept as JSON: an entry is a value or a {"secret_ref": …}, and the admin page hands it back untouched.
    Dictionary<string, JsonElement>? Env,
    bool? PersistentHome,
    string? IdleTimeout,
    string? MaxDuration);

public sealed record TemplateResourcesDto(string? Cpu, string? Memory);

/// <summary>A session as the API shows it, and as each server-sent <c>session</c> event carries it.</summary>
public sealed record SessionDto(
    string Id,
    Guid UserId,
    string? Username,
    string Template,
    string State,
    string? FailureReason,
    string? AgentId,
    string? Platform,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt,
    DateTimeOffset? StartedAt,
    DateTimeOffset? StoppedAt,
    AdminViewingDto? LastViewedByAdmin = null)
{
    public bool IsRunning => State == SessionStateNames.Running;

    public bool IsFinished => State is SessionStateNames.Stopped or SessionStateNames.Failed;
}

/// <summary>The last time an admin viewed another user's session, which its owner is shown.</summary>
public sealed record AdminViewingDto(string Username, DateTimeOffset At);

/// <summary>The API's session states, as the pages test them.</summary>
public static class SessionStateNames
{
    public const string Pending = "pending";
    public const string Starting = "starting";
    public const string Running = "running";
    public const string Hibernated = "hibernated";
    public const string Stopped = "stopped";
    public const string Failed = "failed";

    public static readonly string[] All = ["pending", "starting", "running", "hibernating", "hibernated", "waking", "stopping", "stopped", "failed"];
}

public sealed record CreateSessionRequest(string Template);

/// <summary>The answer to <c>POST /api/v1/sessions/{id}/connect</c>: a single-use ticket for the VNC WebSocket.</summary>
public sealed record ConnectResponse(string Ticket, string Url, DateTimeOffset ExpiresAt);

public sealed record AgentDto(
    string Id,
    string Status,
    string? Platform,
    string? Region,
    string? Version,
    JsonElement Capacity,
    int ActiveSessions,
    bool Draining,
    bool Revoked,
    DateTimeOffset? LastHeartbeat,
    DateTimeOffset? ConnectedAt,
    DateTimeOffset CreatedAt);

public sealed record CreateAgentRequest(string Id);

public sealed record CreateAgentResponse(string Id, string Key);

public sealed record UserDto(Guid Id, string Username, string Role, bool Disabled, DateTimeOffset CreatedAt);

public sealed record CreateUserRequest(string Username, string Password, string Role);

/// <summary><c>PATCH /api/v1/users/{id}</c>: only the fields that are set change.</summary>
public sealed record UpdateUserRequest(string? Role = null, bool? Disabled = null, string? Password = null);

public sealed record AuditEntryDto(long Id, DateTimeOffset At, Guid? ActorId, string Actor, string Action, string TargetType,
    string? TargetId, JsonElement Details);

public sealed record AuditPageDto(IReadOnlyList<AuditEntryDto> Items, long Total, int Page, int PageSize);

/// <summary>One finding of <c>GET /api/v1/admin/diagnostics</c>: status is ok, warn or fail.</summary>
public sealed record DiagnosticCheckDto(string Id, string Title, string Status, string Evidence, string? Fix);

public sealed record DiagnosticsReportDto(string Status, DateTimeOffset CheckedAt, IReadOnlyList<DiagnosticCheckDto> Checks);
