using StreamSpace.Contracts;

namespace StreamSpace.Agent.Platforms.Local;

/// <summary>What the agent remembers of a local session, kept in a state file so it survives an agent restart.</summary>
public sealed record LocalSessionRecord
{
    public required string SessionId { get; init; }
    public required string Username { get; init; }
    /// <summary>The OS account the session's processes run as.</summary>
    public SessionAccount? Account { get; init; }
    public required string Template { get; init; }
    public required string Home { get; init; }
    public required string Directory { get; init; }
    public int Display { get; init; }
    public int VncPort { get; init; }
    public int ProcessGroup { get; init; }
    public required SessionState State { get; init; }
    public string? FailureReason { get; init; }
    public DateTimeOffset? StartedAt { get; init; }
    public int IdleTimeoutSeconds { get; init; }
    public int? MaxDurationSeconds { get; init; }

    /// <summary>Whether the session runs a sound server of its own (its template's audio setting when it started).</summary>
    public bool Audio { get; init; }

    /// <summary>The agent's own copy of the VNC password, for the tunnel; readable by the agent alone.</summary>
    public string AgentPasswordFile => Path.Combine(Directory, "password");

    /// <summary>The folder of what the session's account must read: Xvnc's password file, the X authority, the ready FIFO.</summary>
    public string RuntimeDirectory => Path.Combine(Directory, "run");

    public string PasswordFile => Path.Combine(RuntimeDirectory, "vncpasswd");

    public string XAuthorityFile => Path.Combine(RuntimeDirectory, "Xauthority");

    /// <summary>The folder of the session's PulseAudio: its runtime files, cookie and the socket programs play through.</summary>
    public string SoundDirectory => Path.Combine(RuntimeDirectory, "pulse");

    /// <summary>The sound server's socket, in run/ (the account's, 0700), so no other account can play or listen.</summary>
    public string SoundSocket => Path.Combine(SoundDirectory, "native");
}
