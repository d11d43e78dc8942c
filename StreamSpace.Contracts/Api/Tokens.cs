namespace StreamSpace.Contracts.Api;

/// <summary>
/// What a personal API token may do. Every token may read (GET, HEAD); <see cref="Sessions"/> also launches, stops,
/// hibernates, wakes and connects to sessions; <see cref="Admin"/> reaches the admin endpoints (an admin's tokens only).
/// </summary>
public static class ApiTokenScopes
{
    public const string Read = "read";
    public const string Sessions = "sessions";
    public const string Admin = "admin";

    public static readonly IReadOnlyList<string> All = [Read, Sessions, Admin];

    /// <summary>What every personal API token starts with, so secret scanners can find a leaked one.</summary>
    public const string TokenPrefix = "ssp_";

    /// <summary>The longest expiry a token may have.</summary>
    public const int MaxExpiresInDays = 365;
}

/// <summary><c>POST /api/v1/users/me/tokens</c>.</summary>
public sealed record CreateApiTokenRequest(string Name, int ExpiresInDays, IReadOnlyList<string> Scopes);

/// <summary>
/// A token as lists show it: never the secret, only its first characters. <see cref="State"/> is <c>active</c>,
/// <c>expired</c>, <c>revoked</c> or <c>signed_out</c> (ended with the user's other sign-ins, e.g. by a password change).
/// </summary>
public sealed record ApiTokenResponse(Guid Id, Guid UserId, string Username, string Name, string Prefix, IReadOnlyList<string> Scopes,
    DateTimeOffset CreatedAt, DateTimeOffset ExpiresAt, DateTimeOffset? LastUsedAt, DateTimeOffset? RevokedAt, string State);

/// <summary>The answer to creating a token: the only time the secret is shown.</summary>
public sealed record CreatedApiTokenResponse(string Token, ApiTokenResponse Details);

/// <summary>One row of <c>GET /api/v1/admin/usage</c>: a user's or a template's time in running sessions.</summary>
public sealed record UsageRow(string Key, double SessionHours, int Sessions);

/// <summary>The answer of <c>GET /api/v1/admin/usage</c>: the window and grouping it covers, and its rows.</summary>
public sealed record UsageReport(DateTimeOffset From, DateTimeOffset To, string GroupBy, IReadOnlyList<UsageRow> Rows);
