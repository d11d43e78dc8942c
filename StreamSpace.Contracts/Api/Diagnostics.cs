namespace StreamSpace.Contracts.Api;

public static class CheckStatus
{
    public const string Ok = "ok";
    public const string Warn = "warn";
    public const string Fail = "fail";
}

/// <summary>One finding of <c>GET /api/v1/admin/diagnostics</c>: what was checked, how it stands, what shows it, and what to do.</summary>
public sealed record DiagnosticCheck(string Id, string Title, string Status, string Evidence, string? Fix = null)
{
    public static DiagnosticCheck Ok(string id, string title, string evidence) => new(id, title, CheckStatus.Ok, evidence);

    public static DiagnosticCheck Warn(string id, string title, string evidence, string fix) => new(id, title, CheckStatus.Warn, evidence, fix);

    public static DiagnosticCheck Fail(string id, string title, string evidence, string fix) => new(id, title, CheckStatus.Fail, evidence, fix);
}

public sealed record DiagnosticsReport(string Status, DateTimeOffset CheckedAt, IReadOnlyList<DiagnosticCheck> Checks);
