using StreamSpace.Api.Features.Sessions;
using StreamSpace.Contracts;

namespace StreamSpace.Api.Features.Recordings;

/// <summary>The recordings as the agents report them, and what the agents are told: record a session, delete a file.</summary>
public sealed class AgentRecordings(RecordingCatalog catalog, IRecordedSessions sessions, ISessionAgents agents, ILogger<AgentRecordings> logger)
    : IAgentRecordings
{
    public async Task ReportAsync(string agentId, RecordingMessage report, CancellationToken cancellationToken)
    {
        if (report.DurationMs < 0 || report.Bytes < 0)
        {
            logger.LogWarning("Agent {AgentId} reported recording {RecordingId} with a negative duration or size; ignored", agentId, report.RecordingId);
            return;
        }

        // The owner and template come from the session, never from the agent, and only the session's own agent may
        // report a recording of it.
        var session = await sessions.FindAsync(report.SessionId, cancellationToken);
        if (session is null || session.AgentId != agentId)
        {
            logger.LogWarning("Agent {AgentId} reported recording {RecordingId} of session {SessionId}, which is not placed on it; ignored",
                agentId, report.RecordingId, report.SessionId);
            return;
        }

        await catalog.UpsertAsync(agentId, report, session.UserId, session.Username ?? "", session.Template, cancellationToken);
    }

    public async Task AgentConnectedAsync(string agentId, int protocolVersion, CancellationToken cancellationToken)
    {
        if (protocolVersion < AgentProtocol.MediaVersion)
        {
            return;
        }

        foreach (var sessionId in await sessions.RecordedOnAsync(agentId, cancellationToken))
        {
            await agents.SendAsync(agentId, new RecordSessionMessage(sessionId), cancellationToken);
        }

        await SendDeletesAsync(agentId, cancellationToken);
    }

    /// <summary>
    /// Hands the agent the deletes it has not had; what it cannot take now (offline) goes at its next connect. It comes
    /// after the deletion's commit, so it never throws: the recording is deleted whether or not the agent hears of it now.
    /// </summary>
    public async Task SendDeletesAsync(string agentId, CancellationToken cancellationToken)
    {
        try
        {
            foreach (var id in await catalog.UndeliveredDeletesAsync(agentId, cancellationToken))
            {
                if (!await agents.SendAsync(agentId, new DeleteRecordingMessage(id), cancellationToken))
                {
                    logger.LogInformation("Agent {AgentId} is offline; it deletes its recordings' files when it reconnects", agentId);
                    return;
                }

                await catalog.MarkDeleteSentAsync(id, cancellationToken);
            }
        }
        catch (Exception e) when (e is Npgsql.NpgsqlException or TimeoutException or InvalidOperationException or System.Threading.Channels.ChannelClosedException)
        {
            logger.LogWarning("Could not send agent {AgentId} its recordings' deletes now ({Reason}); they go when it reconnects", agentId, e.Message);
        }
    }
}
