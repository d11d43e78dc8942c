using StreamSpace.Contracts;

namespace StreamSpace.Api.Features.Recordings;

/// <summary>Sends an agent message; false when the agent could not be reached.</summary>
public delegate Task<bool> AgentSend(AgentMessage message, CancellationToken cancellationToken);

/// <summary>
/// Hands agents the deletes of their recordings' files. What an agent cannot take now (offline) waits in the catalog
/// (deleted_at without delete_sent_at) and goes at its next connect. A delete handed over is only queued on a connection,
/// which may drop before the agent reads it (or live on another replica), so each (re)connect resends every tombstone of
/// the agent while the tombstone exists; deleting a file already gone is nothing to the agent.
/// </summary>
public sealed class RecordingDeletes(RecordingCatalog catalog, ILogger<RecordingDeletes> logger)
{
    /// <summary>
    /// Sends the agent, through <paramref name="send"/>, the deletes it has not had. It comes after the deletion's
    /// commit, so it never throws: the recording is deleted whether or not the agent hears of it now. With
    /// <paramref name="resendSent"/> (at a connect), the deletes it was handed before go again.
    /// </summary>
    public async Task DeliverAsync(string agentId, AgentSend send, CancellationToken cancellationToken, bool resendSent = false)
    {
        try
        {
            foreach (var id in await catalog.DeletesToSendAsync(agentId, resendSent, cancellationToken))
            {
                if (!await send(new DeleteRecordingMessage(id), cancellationToken))
                {
                    logger.LogInformation("Agent {AgentId} is offline; it deletes its recordings' files when it reconnects", agentId);
                    return;
                }

                await catalog.MarkDeleteSentAsync(id, cancellationToken);
            }
        }
        catch (Exception e) when (e is Npgsql.NpgsqlException or TimeoutException or InvalidOperationException or System.Threading.Channels.ChannelClosedException
            or OperationCanceledException)
        {
            logger.LogWarning("Could not send agent {AgentId} its recordings' deletes now ({Reason}); they go when it reconnects", agentId, e.Message);
        }
    }
}
