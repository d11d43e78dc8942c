using System.Text.Json;
using System.Text.Json.Serialization;

namespace StreamSpace.Contracts;

/// <summary>
/// The agent protocol. One WebSocket per agent: JSON text frames carry these messages, binary frames carry
/// tunnel data. Every message names its type in <c>type</c>.
/// </summary>
public static class AgentProtocol
{
    /// <summary>
    /// The version this build speaks. Version 4 carries a session's sound (<see cref="Tunnel.AudioStreams"/>) and records
    /// sessions (<see cref="RecordingMessage"/>); version 3 signs view-only viewers in with the session's view-only VNC password
    /// (<see cref="StreamOpenMessage.ViewOnly"/>); version 2 opens a data connection per viewer (<see cref="StreamOpenMessage"/>);
    /// version 1 carries viewers in the credit mux on the control socket. A hello with another version is refused
    /// with the supported list.
    /// </summary>
    public const int Version = MediaVersion;

    /// <summary>The version whose viewers ride the credit mux (<see cref="TunnelOpenMessage"/>) on the control socket.</summary>
    public const int MuxVersion = 1;

    /// <summary>The first version with a data connection per viewer, and with the per-template clipboard settings.</summary>
    public const int DataVersion = 2;

    /// <summary>
    /// The first version that knows <see cref="StreamOpenMessage.ViewOnly"/>. An older agent would ignore the flag and
    /// sign the viewer in with the full password, so the control plane never sends it a view-only stream.
    /// </summary>
    public const int ViewOnlyVersion = 3;

    /// <summary>
    /// The first version with audio streams (<see cref="Tunnel.AudioStreams"/>) and recordings (<see cref="RecordSessionMessage"/>,
    /// <see cref="RecordingMessage"/>, <see cref="DeleteRecordingMessage"/>, <see cref="Tunnel.RecordingStreams"/>).
    /// </summary>
    public const int MediaVersion = 4;

    public static readonly IReadOnlyList<int> SupportedVersions = [MuxVersion, DataVersion, ViewOnlyVersion, MediaVersion];

    /// <summary>The largest text frame either side accepts; a larger one closes the socket with 1008.</summary>
    public const int MaxTextFrameBytes = 256 * 1024;

    public const string AgentIdHeader = "X-StreamSpace-Agent-Id";

    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        // Names only: a number where a state belongs is a malformed frame, not some state.
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower, allowIntegerValues: false) },
    };

    public static byte[] Serialize(AgentMessage message) => JsonSerializer.SerializeToUtf8Bytes(message, Json);

    /// <summary>Parses a text frame; throws <see cref="JsonException"/> for anything that is not a known message.</summary>
    public static AgentMessage Deserialize(ReadOnlySpan<byte> frame) =>
        JsonSerializer.Deserialize<AgentMessage>(frame, Json) ?? throw new JsonException("The frame is JSON null.");
}

public static class CommandTypes
{
    public const string StartSession = "start_session";
    public const string StopSession = "stop_session";
    public const string HibernateSession = "hibernate_session";
    public const string WakeSession = "wake_session";

    public static readonly IReadOnlySet<string> All = new HashSet<string> { StartSession, StopSession, HibernateSession, WakeSession };
}

[JsonPolymorphic(TypeDiscriminatorPropertyName = "type", UnknownDerivedTypeHandling = JsonUnknownDerivedTypeHandling.FailSerialization)]
[JsonDerivedType(typeof(HelloMessage), "hello")]
[JsonDerivedType(typeof(WelcomeMessage), "welcome")]
[JsonDerivedType(typeof(HeartbeatMessage), "heartbeat")]
[JsonDerivedType(typeof(CommandMessage), "command")]
[JsonDerivedType(typeof(CommandAckMessage), "command_ack")]
[JsonDerivedType(typeof(CommandResultMessage), "command_result")]
[JsonDerivedType(typeof(SessionStateMessage), "session_state")]
[JsonDerivedType(typeof(TunnelOpenMessage), "tunnel_open")]
[JsonDerivedType(typeof(TunnelOpenedMessage), "tunnel_opened")]
[JsonDerivedType(typeof(TunnelClosedMessage), "tunnel_closed")]
[JsonDerivedType(typeof(AgentChecksMessage), "agent_checks")]
[JsonDerivedType(typeof(StreamOpenMessage), "stream_open")]
[JsonDerivedType(typeof(RecordSessionMessage), "record_session")]
[JsonDerivedType(typeof(RecordingMessage), "recording")]
[JsonDerivedType(typeof(DeleteRecordingMessage), "delete_recording")]
public abstract record AgentMessage;

/// <summary>What the agent can run now.</summary>
public sealed record AgentCapacity(int MaxSessions, int ActiveSessions);

/// <summary>A session as the agent sees it, reported in hello and heartbeats.</summary>
public sealed record ReportedSession(string SessionId, SessionState State, string? FailureReason = null, JsonElement? PlatformMetadata = null);

/// <summary>Agent → control plane, first frame after connecting.</summary>
public sealed record HelloMessage(
    int ProtocolVersion,
    string Platform,
    string Region,
    string Version,
    AgentCapacity Capacity,
    int HeartbeatIntervalSeconds,
    IReadOnlyList<ReportedSession> Sessions,
    string? ControlPlaneUrl = null) : AgentMessage;

/// <summary>
/// Control plane → agent, the answer to an accepted hello. <see cref="UnownedSessionIds"/> lists the sessions the agent
/// reported that the control plane does not own (unknown, ended, or placed on another agent): the agent stops them
/// after its grace period unless a command for one arrives first.
/// </summary>
public sealed record WelcomeMessage(int ProtocolVersion, DateTimeOffset ServerTime, IReadOnlyList<string>? UnownedSessionIds = null) : AgentMessage;

/// <summary>Agent → control plane every heartbeat interval; carries the agent's clock for skew checks.</summary>
public sealed record HeartbeatMessage(DateTimeOffset SentAt, AgentCapacity Capacity, IReadOnlyList<ReportedSession> Sessions) : AgentMessage;

/// <summary>Control plane → agent. Delivered at least once: a repeated <see cref="CommandId"/> is the same command.</summary>
public sealed record CommandMessage(Guid CommandId, string CommandType, string? SessionId, JsonElement Payload) : AgentMessage;

/// <summary>Agent → control plane: the command arrived and is being carried out.</summary>
public sealed record CommandAckMessage(Guid CommandId) : AgentMessage;

/// <summary>Agent → control plane: the command's outcome, and the session's state after it.</summary>
public sealed record CommandResultMessage(Guid CommandId, bool Success, string? Error = null, ReportedSession? Session = null) : AgentMessage;

/// <summary>Agent → control plane: a session changed on its own (it became ready, crashed, idled out).</summary>
public sealed record SessionStateMessage(ReportedSession Session) : AgentMessage;

/// <summary>Control plane → agent: open a VNC stream to the session, carried in binary frames tagged with the stream id.</summary>
public sealed record TunnelOpenMessage(int StreamId, string SessionId) : AgentMessage;

/// <summary>Agent → control plane: the agent reached the session's VNC server and authenticated; bytes may flow.</summary>
public sealed record TunnelOpenedMessage(int StreamId) : AgentMessage;

/// <summary>Either side: the stream ended or could not open. <see cref="Reason"/> is shown to the viewer.</summary>
public sealed record TunnelClosedMessage(int StreamId, string Reason) : AgentMessage;

/// <summary>
/// Control plane → agent: a viewer of <see cref="SessionId"/> is waiting on the replica at <see cref="DataUrl"/>. The agent
/// reaches the session's VNC server, then dials out to <see cref="DataUrl"/> with <see cref="Token"/> and turns that
/// connection into the viewer's byte stream. There is no reply message: the data connection arriving is the reply.
/// The token is single-use and expires at <see cref="ExpiresAt"/>. With a <see cref="Purpose"/> (see <see cref="Tunnel.FileStreams"/>)
/// the connection carries a file operation in the session's home instead of VNC, on <see cref="FileName"/>; an agent
/// that does not know the purpose refuses it. With <see cref="ViewOnly"/> (version 3) the agent answers the VNC server
/// with the session's view-only password, or refuses the stream when the session has none.
/// </summary>
public sealed record StreamOpenMessage(Guid StreamId, string SessionId, string Token, string DataUrl, DateTimeOffset ExpiresAt,
    string? Purpose = null, string? FileName = null, bool ViewOnly = false) : AgentMessage;

/// <summary>One finding of the agent about its own platform (permissions, storage, images), shown in the admin diagnostics.</summary>
public sealed record AgentCheck(string Id, string Title, string Status, string Evidence, string? Fix = null)
{
    public const string Ok = "ok";
    public const string Warn = "warn";
    public const string Fail = "fail";
}

/// <summary>Agent → control plane, after welcome and whenever its checks change: the whole current list.</summary>
public sealed record AgentChecksMessage(IReadOnlyList<AgentCheck> Checks) : AgentMessage;

/// <summary>What a session runs, copied from its template when the session is created.</summary>
public sealed record SessionTemplate(
    string Name,
    string? Image,
    string? Command,
    int VncPort,
    string? Cpu,
    string? Memory,
    IReadOnlyDictionary<string, string> Env,
    bool PersistentHome,
    int IdleTimeoutSeconds,
    int? MaxDurationSeconds,
    IReadOnlyDictionary<string, SecretKeyRef>? SecretEnv = null,
    bool ClipboardToBrowser = true,
    bool ClipboardToSession = true,
    bool Audio = true,
    bool Record = false);

/// <summary>
/// An env variable whose value is a key of a Kubernetes Secret in the session namespace, so the value never passes
/// through the control plane or the agent: the kubelet reads it. The local platform cannot run such a template.
/// </summary>
public sealed record SecretKeyRef(string Name, string Key);

/// <summary>The payload of every session command: enough to start the session from nothing, on any agent.</summary>
public sealed record SessionCommandPayload(string SessionId, Guid UserId, string Username, SessionTemplate Template);

/// <summary>
/// Control plane → agent (version 4): record the running session <see cref="SessionId"/> from now until it stops (an
/// admin asked). An agent already recording it does nothing more; one whose template records it records it anyway.
/// </summary>
public sealed record RecordSessionMessage(string SessionId) : AgentMessage;

/// <summary>
/// Agent → control plane (version 4): a recording of <see cref="SessionId"/> began, grew, or ended. Sent when it starts,
/// every few seconds while it runs, and once with <see cref="EndedAt"/> when it ends (the session stopped, the agent is
/// stopping, the VNC server went away). <see cref="DurationMs"/> is the time it covers; <see cref="Bytes"/> its size on
/// the agent. The agent picks <see cref="RecordingId"/>; the control plane keeps the catalog.
/// </summary>
public sealed record RecordingMessage(Guid RecordingId, string SessionId, DateTimeOffset StartedAt, long DurationMs, long Bytes,
    DateTimeOffset? EndedAt = null) : AgentMessage;

/// <summary>
/// Control plane → agent (version 4): delete the recording's file (an admin deleted it, or retention did). The agent
/// stops it first if it is still running; deleting one that is gone is no error.
/// </summary>
public sealed record DeleteRecordingMessage(Guid RecordingId) : AgentMessage;
