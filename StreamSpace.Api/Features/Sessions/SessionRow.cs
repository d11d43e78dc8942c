using System.Text.Json;
using StreamSpace.Contracts;

namespace StreamSpace.Api.Features.Sessions;

/// <summary>A row as read for <see cref="SessionResponse"/>.</summary>
public sealed class SessionRow
{
    public string Id { get; init; } = "";
    public Guid UserId { get; init; }
    /// <summary>Null once the owner is deleted: their sessions stay, as history.</summary>
    public string? Username { get; init; }
    public string Template { get; init; } = "";
    public string State { get; init; } = "";
    public string? FailureReason { get; init; }
    public string? AgentId { get; init; }
    public string? Platform { get; init; }
    public string PlatformMetadata { get; init; } = "{}";
    public DateTime CreatedAt { get; init; }
    public DateTime UpdatedAt { get; init; }
    public DateTime? StartedAt { get; init; }
    public DateTime? StoppedAt { get; init; }
    public string? LastViewedByAdmin { get; init; }
    public DateTime? LastViewedByAdminAt { get; init; }
    /// <summary>Its template records it, or an admin asked (<see cref="IRecordedSessions"/>).</summary>
    public bool Record { get; init; }

    public const string Select = """
        SELECT s.id, s.user_id, u.username, s.template, s.state, s.failure_reason, s.agent_id, s.platform,
               s.platform_metadata::text AS platform_metadata, s.created_at, s.updated_at, s.started_at, s.stopped_at,
               s.last_viewed_by_admin, s.last_viewed_by_admin_at, s.record
        FROM sessions s LEFT JOIN users u ON u.id = s.user_id
        """;

    public SessionResponse ToView() => new(Id, UserId, Username, Template, SessionNames.ParseState(State), FailureReason, AgentId, Platform,
        JsonDocument.Parse(PlatformMetadata).RootElement, Utc(CreatedAt), Utc(UpdatedAt),
        StartedAt is { } started ? Utc(started) : null, StoppedAt is { } stopped ? Utc(stopped) : null,
        LastViewedByAdmin is { } admin && LastViewedByAdminAt is { } viewedAt ? new AdminViewing(admin, Utc(viewedAt)) : null,
        Record && SessionNames.ParseState(State) is SessionState.Pending or SessionState.Starting or SessionState.Running);

    private static DateTimeOffset Utc(DateTime at) => new(DateTime.SpecifyKind(at, DateTimeKind.Utc));
}
