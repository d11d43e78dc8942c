using StreamSpace.Contracts;
using Dapper;
using Npgsql;
using StreamSpace.Api.Infrastructure.Database;

namespace StreamSpace.Api.Features.Agents.Hub;

/// <summary>
/// Closes a revoked agent's live connection on every API instance, not only the one that took the admin's request:
/// the revocation NOTIFYs with the agent id, and each instance's hub drops its connection of that agent.
/// A notification missed while an instance re-opens its listening connection is caught at the agent's next
/// heartbeat, which checks the credential again (<see cref="AgentStore.RecordHeartbeatAsync"/>).
/// </summary>
public sealed class AgentRevocations(AgentHub hub, ILogger<AgentRevocations> logger) : IDatabaseNotificationHandler
{
    public const string NotifyChannel = "agent_revocations";

    public string Channel => NotifyChannel;

    /// <summary>Announces the revocation; PostgreSQL delivers it only if the transaction commits.</summary>
    public static Task NotifyAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string agentId, CancellationToken cancellationToken) =>
        connection.ExecuteAsync(new CommandDefinition("SELECT pg_notify(@channel, @agentId)",
            new { channel = NotifyChannel, agentId }, transaction, cancellationToken: cancellationToken));

    public void OnNotification(string payload) => _ = DisconnectAsync(payload);

    // Off the listening connection: closing waits for the agent's answer for up to a few seconds.
    private async Task DisconnectAsync(string agentId)
    {
        try
        {
            await Task.Yield();
            await hub.DisconnectAsync(agentId, AgentCloseCodes.Revoked, "the agent's credential was revoked");
        }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException or ObjectDisposedException)
        {
            logger.LogWarning("Could not close revoked agent {AgentId}'s connection: {Reason}; its next heartbeat closes it", agentId, e.Message);
        }
    }
}
