using System.Text.Json;
using Dapper;
using Npgsql;
using StreamSpace.Api.Features.Replicas;
using StreamSpace.Api.Infrastructure.Database;
using StreamSpace.Contracts;

namespace StreamSpace.Api.Features.Agents.Hub;

/// <summary>
/// Messages for an agent held by another replica (a viewer's <see cref="StreamOpenMessage"/>), carried by NOTIFY
/// <see cref="Channel"/>: every replica listens, and the one named in the message forwards it if it still holds that
/// connection of the agent; otherwise it is dropped, and the waiting viewer times out.
/// </summary>
public sealed class AgentRelay(AgentHub hub, ReplicaIdentity identity, ILogger<AgentRelay> logger) : IDatabaseNotificationHandler
{
    public const string NotifyChannel = "agent_relay";

    private sealed record Envelope(Guid To, string AgentId, Guid ConnectionId, JsonElement Message);

    public string Channel => NotifyChannel;

    /// <summary>Asks replica <paramref name="to"/> to send <paramref name="message"/> on the agent's connection <paramref name="connectionId"/>.</summary>
    public static async Task SendAsync(NpgsqlDataSource dataSource, Guid to, string agentId, Guid connectionId, AgentMessage message,
        CancellationToken cancellationToken)
    {
        var payload = JsonSerializer.Serialize(new Envelope(to, agentId, connectionId, JsonSerializer.SerializeToElement(message, AgentProtocol.Json)), AgentProtocol.Json);
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition("SELECT pg_notify(@channel, @payload)",
            new { channel = NotifyChannel, payload }, cancellationToken: cancellationToken));
    }

    public void OnNotification(string payload)
    {
        var envelope = JsonSerializer.Deserialize<Envelope>(payload, AgentProtocol.Json);
        if (envelope is null || envelope.To != identity.Id)
        {
            return;
        }

        _ = ForwardAsync(envelope);
    }

    private async Task ForwardAsync(Envelope envelope)
    {
        try
        {
            await Task.Yield();
            if (envelope.Message.Deserialize<AgentMessage>(AgentProtocol.Json) is not { } message
                || !await hub.SendIfHeldAsync(envelope.AgentId, envelope.ConnectionId, message, CancellationToken.None))
            {
                logger.LogInformation("Dropped a relayed message for agent {AgentId}: its connection {ConnectionId} is not held here", envelope.AgentId, envelope.ConnectionId);
            }
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or ObjectDisposedException or System.Threading.Channels.ChannelClosedException)
        {
            logger.LogWarning("Could not forward a relayed message to agent {AgentId}: {Reason}", envelope.AgentId, e.Message);
        }
    }
}
