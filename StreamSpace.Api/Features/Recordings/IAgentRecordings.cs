using StreamSpace.Contracts;

namespace StreamSpace.Api.Features.Recordings;

/// <summary>
/// What the agent hub hands the Recordings feature: the agents' reports, and each (re)connect. The Recordings feature
/// defines and implements it (<see cref="AgentRecordings"/>); the Agents feature calls it.
/// </summary>
public interface IAgentRecordings
{
    /// <summary>Records a <see cref="RecordingMessage"/>; one about a session not placed on that agent is dropped.</summary>
    Task ReportAsync(string agentId, RecordingMessage report, CancellationToken cancellationToken);

    /// <summary>
    /// After the agent's welcome: asks it again to record its running sessions that are to be recorded, and sends it the
    /// deletes it missed while offline, through <paramref name="send"/> (its new connection). Agents older than
    /// <see cref="AgentProtocol.MediaVersion"/> are left alone. <paramref name="cancellationToken"/> is the
    /// connection's own, cancelled when it ends: while it lasts, the agent's recordings whose reports stopped are ended
    /// (<see cref="AgentRecordings.SilentFor"/>).
    /// </summary>
    Task AgentConnectedAsync(string agentId, int protocolVersion, AgentSend send, CancellationToken cancellationToken);
}
