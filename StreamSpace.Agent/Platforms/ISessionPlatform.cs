using System.Net.Sockets;
using StreamSpace.Agent.Platforms.Local;
using StreamSpace.Contracts;

namespace StreamSpace.Agent.Platforms;

/// <summary>
/// A session's VNC server: where it listens, its passwords, and how to reach it. The tunnel dials Host:Port unless the
/// platform supplies <see cref="Connect"/>, for servers the agent cannot dial directly (a pod seen from outside its cluster).
/// </summary>
public sealed record VncEndpoint(string Host, int Port, string Password)
{
    public Func<CancellationToken, Task<Stream>>? Connect { get; init; }

    /// <summary>The password Xvnc grants view only; null for a session started before sharing existed.</summary>
    public string? ViewOnlyPassword { get; init; }

    /// <summary>
    /// The password a viewer is signed in with. A view-only viewer never falls back to the full password: a session
    /// without a view-only one refuses it.
    /// </summary>
    public string PasswordFor(bool viewOnly) => !viewOnly ? Password
        : ViewOnlyPassword ?? throw new InvalidOperationException("restart the session to share it view-only (it has no view-only password)");

    public async Task<Stream> OpenAsync(CancellationToken cancellationToken)
    {
        if (Connect is not null)
        {
            return await Connect(cancellationToken);
        }

        return await TcpDial.ConnectAsync(Host, Port, cancellationToken);
    }
}

/// <summary>A TCP connection to a session's server (its VNC server, its file service), with Nagle off for interactive bytes.</summary>
public static class TcpDial
{
    public static async Task<Stream> ConnectAsync(string host, int port, CancellationToken cancellationToken)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(host, port, cancellationToken);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }
}

/// <summary>A running session's home on this machine and the account that owns it, for file transfer.</summary>
public sealed record SessionHome(string SessionId, string Path, SessionAccount Owner);

/// <summary>
/// A running session's sound server on this machine, for its audio stream: the socket of its PulseAudio (null when the
/// session's template has audio off, so it runs none) and the account a capture runs as (through setpriv when
/// <see cref="DropPrivileges"/>, as the session's own processes do).
/// </summary>
public sealed record SessionSound(string SessionId, string? Socket, SessionAccount Account, bool DropPrivileges);

/// <summary>
/// A running session's file service, for a platform whose sessions' homes are out of the agent's reach (a pod): how to
/// open a connection to it, and the key that proves the connection is the agent's.
/// </summary>
public sealed record SessionFileService(Func<CancellationToken, Task<Stream>> Connect, byte[] Key);

/// <summary>
/// Where sessions run. Every operation is idempotent: starting a running session, or stopping a missing one,
/// succeeds and reports the session's state.
/// </summary>
public interface ISessionPlatform
{
    string Name { get; }

    /// <summary>
    /// Begins watching the platform's sessions and enforcing their time limits. Called once as the agent starts, by
    /// <see cref="SessionPlatformService"/>; until then the platform observes nothing on its own.
    /// </summary>
    Task StartMonitoringAsync(CancellationToken cancellationToken);

    /// <summary>The sessions this agent runs now, reported in hello after any restart.</summary>
    Task<IReadOnlyList<ReportedSession>> ListSessionsAsync(CancellationToken cancellationToken);

    Task<ReportedSession> StartAsync(SessionCommandPayload session, CancellationToken cancellationToken);

    /// <summary>Stops the session and removes what it ran; needs only the id, so that sessions nobody owns can be stopped too.</summary>
    Task<ReportedSession> StopAsync(string sessionId, CancellationToken cancellationToken);

    Task<ReportedSession> HibernateAsync(SessionCommandPayload session, CancellationToken cancellationToken);

    Task<ReportedSession> WakeAsync(SessionCommandPayload session, CancellationToken cancellationToken);

    /// <summary>Where the tunnel reaches a running session's VNC server, and its password; null when it does not run here.</summary>
    Task<VncEndpoint?> FindVncAsync(string sessionId, CancellationToken cancellationToken);

    /// <summary>
    /// A running session's home on this machine, for uploads and downloads; null when the session does not run here.
    /// Platforms that cannot reach a session's files throw <see cref="NotSupportedException"/> with a message for the user.
    /// </summary>
    Task<SessionHome?> FindHomeAsync(string sessionId, CancellationToken cancellationToken) =>
        throw new NotSupportedException($"Uploading and downloading files is not supported on the {Name} platform.");

    /// <summary>
    /// The file service of a running session whose home is not on this machine; uploads and downloads are relayed to
    /// it. Null when the platform opens its sessions' homes itself (<see cref="FindHomeAsync"/>), or the session does not run here.
    /// </summary>
    Task<SessionFileService?> FindFileServiceAsync(string sessionId, CancellationToken cancellationToken) => Task.FromResult<SessionFileService?>(null);

    /// <summary>
    /// A running session's sound server, for its audio stream; null when the session does not run here. Platforms
    /// whose sessions' sound the agent cannot capture throw <see cref="NotSupportedException"/> with a message for the user.
    /// </summary>
    Task<SessionSound?> FindSoundAsync(string sessionId, CancellationToken cancellationToken) =>
        throw new NotSupportedException($"Sound is not supported on the {Name} platform yet.");

    /// <summary>
    /// What the agent can check about its own platform (permissions, storage, images). Called at every heartbeat, so it
    /// answers from what it already knows and refreshes anything costly in the background.
    /// </summary>
    Task<IReadOnlyList<AgentCheck>> CheckAsync(CancellationToken cancellationToken);

    /// <summary>A viewer sent input: the session is not idle.</summary>
    void NoteActivity(string sessionId);

    /// <summary>Raised when a session changes on its own: it became ready, crashed, or idled out.</summary>
    event Action<ReportedSession>? SessionChanged;
}
