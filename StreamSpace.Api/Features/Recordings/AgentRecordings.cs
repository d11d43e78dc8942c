using StreamSpace.Api.Features.Sessions;
using StreamSpace.Contracts;

namespace StreamSpace.Api.Features.Recordings;

/// <summary>The recordings as the agents report them, and what a (re)connected agent is told: record a session, delete a file.</summary>
public sealed class AgentRecordings(RecordingCatalog catalog, IRecordedSessions sessions, RecordingDeletes deletes, ILogger<AgentRecordings> logger)
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

        try
        {
            await catalog.UpsertAsync(agentId, report, session.UserId, session.Username ?? "", session.Template, cancellationToken);
        }
        catch (Npgsql.PostgresException e) when (e.SqlState.StartsWith("23", StringComparison.Ordinal))
        {
            // A constraint the report cannot meet (its session or user removed meanwhile) costs this report only: a
            // thrown error would close the agent's connection, and the resent report would close it again.
            logger.LogWarning("Agent {AgentId}'s report of recording {RecordingId} was dropped: {Reason}", agentId, report.RecordingId, e.MessageText);
        }
    }

    public async Task AgentConnectedAsync(string agentId, int protocolVersion, AgentSend send, CancellationToken cancellationToken)
    {
        if (protocolVersion < AgentProtocol.MediaVersion)
        {
            return;
        }

        foreach (var sessionId in await sessions.RecordedOnAsync(agentId, cancellationToken))
        {
            await send(new RecordSessionMessage(sessionId), cancellationToken);
        }

        await deletes.DeliverAsync(agentId, send, cancellationToken, resendSent: true);
    }
}
