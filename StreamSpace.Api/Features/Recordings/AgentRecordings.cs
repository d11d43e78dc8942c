using StreamSpace.Api.Features.Sessions;
using StreamSpace.Contracts;

namespace StreamSpace.Api.Features.Recordings;

/// <summary>
/// The recordings as the agents report them, and what a (re)connected agent is told: record a session, delete a file.
/// A recording whose end report was lost (the agent restarted, its connection dropped with the report) would stay
/// "recording" forever; so while an agent stays connected, its recordings not reported for <see cref="SilentFor"/> are
/// ended at the end their last report implies. A connected agent reports every running recording every 5 s, and right
/// after its welcome, so only a recording that is over goes that long unreported; an agent offline is left alone, as its
/// recordings may run on until it is back.
/// </summary>
public sealed class AgentRecordings(RecordingCatalog catalog, IRecordedSessions sessions, RecordingDeletes deletes, TimeProvider time,
    ILogger<AgentRecordings> logger) : IAgentRecordings
{
    /// <summary>Four of the agent's 5 s report intervals.</summary>
    public static readonly TimeSpan SilentFor = TimeSpan.FromSeconds(20);

    private static readonly TimeSpan CheckEvery = TimeSpan.FromSeconds(10);

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
        _ = EndSilentRecordingsAsync(agentId, cancellationToken);
    }

    /// <summary>Until the connection ends, every <see cref="CheckEvery"/>: ends the agent's recordings unreported for <see cref="SilentFor"/>.</summary>
    private async Task EndSilentRecordingsAsync(string agentId, CancellationToken connected)
    {
        using var timer = new PeriodicTimer(CheckEvery, time);
        var since = time.GetTimestamp();
        try
        {
            while (await timer.WaitForNextTickAsync(connected))
            {
                // Reports sent before this connection began count only once the agent had the time to send them again.
                if (time.GetElapsedTime(since) < SilentFor)
                {
                    continue;
                }

                foreach (var id in await catalog.EndSilentAsync(agentId, SilentFor, connected))
                {
                    logger.LogWarning("Recording {RecordingId} on agent {AgentId} was not reported for {Seconds:0}s while the agent was connected; ended at its last report",
                        id, agentId, SilentFor.TotalSeconds);
                }
            }
        }
        catch (OperationCanceledException)
        {
            // The connection ended; the next one checks again.
        }
        catch (Exception e) when (e is Npgsql.NpgsqlException or TimeoutException)
        {
            logger.LogWarning("Could not end agent {AgentId}'s silent recordings ({Reason}); its next connection checks again", agentId, e.Message);
        }
    }
}
