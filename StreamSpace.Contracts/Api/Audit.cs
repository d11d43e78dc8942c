using System.Text.Json;

namespace StreamSpace.Contracts.Api;

public sealed record AuditEntryResponse(long Id, DateTimeOffset At, Guid? ActorId, string Actor, string Action,
    string TargetType, string? TargetId, JsonElement Details);

/// <summary>One page of <c>GET /api/v1/audit</c>, newest first.</summary>
public sealed record AuditPage(IReadOnlyList<AuditEntryResponse> Items, long Total, int Page, int PageSize);
