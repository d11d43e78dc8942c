namespace StreamSpace.Contracts.Api;

/// <summary>
/// A group as <c>/api/v1/admin/groups</c> shows it: its quotas (null: the group does not set that one), its members and
/// the templates it may launch. A template no group lists is open to everyone.
/// </summary>
public sealed record GroupResponse(
    Guid Id,
    string Name,
    string Description,
    bool ProviderManaged,
    GroupQuotas Quotas,
    IReadOnlyList<GroupMemberResponse> Members,
    IReadOnlyList<string> Templates,
    DateTimeOffset CreatedAt);

/// <summary>
/// A group's quotas; null leaves that one to the user's other groups, then to the global default
/// (<c>SESSION_QUOTA</c>; on Kubernetes the template's own resources). A user in several groups gets the largest value of each.
/// </summary>
public sealed record GroupQuotas(int? MaxSessions = null, int? MaxCpuMillicores = null, int? MaxMemoryMib = null);

/// <summary>A member and how they became one: <see cref="GroupMemberSources.Manual"/> or <see cref="GroupMemberSources.Provider"/>.</summary>
public sealed record GroupMemberResponse(Guid UserId, string Username, string Source);

public static class GroupMemberSources
{
    public const string Manual = "manual";
    public const string Provider = "provider";
}

/// <summary><c>POST /api/v1/admin/groups</c>; <c>PUT /api/v1/admin/groups/{id}</c> takes the same fields but the quotas, which have their own route.</summary>
public sealed record GroupRequest(string Name, string? Description = null, bool ProviderManaged = false, GroupQuotas? Quotas = null);

/// <summary><c>POST /api/v1/admin/groups/{id}/members</c>.</summary>
public sealed record AddGroupMemberRequest(string Username);
