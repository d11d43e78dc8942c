namespace StreamSpace.Agent.Platforms.Local;

/// <summary>What the agent remembers of a local session, kept in a state file so it survives an agent restart.</summary>
public sealed record LocalSessionRecord
{
    public required string SessionId { get; init; }
    public required string Username { get; init; }
    public required string Template { get; init; }
    public required string Home { get; init; }
    public required string Directory { get; init; }
    public int Display { get; init; }
    public int VncPort { get; init; }
    public int ProcessGroup { get; init; }
    public required string State { get; init; }
    public string? FailureReason { get; init; }
    public DateTimeOffset? StartedAt { get; init; }
    public int IdleTimeoutSeconds { get; init; }
    public int? MaxDurationSeconds { get; init; }

    public string PasswordFile => Path.Combine(Directory, "vncpasswd");
}
