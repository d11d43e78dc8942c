using System.Text.Json;
using Dapper;
using Npgsql;
using StreamSpace.Api.Features.Agents.Commands;
using StreamSpace.Api.Features.Replicas;
using StreamSpace.Api.Infrastructure.Database;
using StreamSpace.Contracts;

namespace StreamSpace.Api.Features.Agents.Hub;

/// <summary>A command for an agent committed on some replica: this one sends it if it holds the agent.</summary>
public sealed class AgentCommandNotifications(AgentHub hub, ILogger<AgentCommandNotifications> logger) : IDatabaseNotificationHandler
{
    public string Channel => AgentCommandQueue.NotifyChannel;

    public void OnNotification(string payload)
    {
        if (hub.IsConnected(payload))
        {
            _ = DeliverAsync(payload);
        }
    }

    // Off the listening connection: delivery queries and sends.
    private async Task DeliverAsync(string agentId)
    {
        try
        {
            await Task.Yield();
            await hub.DeliverCommandsAsync(agentId, CancellationToken.None);
        }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException or ObjectDisposedException or TimeoutException)
        {
            logger.LogWarning("Could not send agent {AgentId}'s new commands now ({Reason}); the sweep sends them", agentId, e.Message);
        }
    }
}

/// <summary>Another replica accepted a hello of an agent: an older connection of it here closes (4001).</summary>
public sealed class AgentConnectionNotifications(AgentHub hub, ILogger<AgentConnectionNotifications> logger) : IDatabaseNotificationHandler
{
    public string Channel => AgentHub.ConnectionsChannel;

    public void OnNotification(string payload)
    {
        if (payload.Split(' ') is [var agentId, var id] && Guid.TryParse(id, out var connectionId) && hub.Find(agentId) is { } held
            && held.Id != connectionId)
        {
            _ = CloseAsync(agentId, connectionId);
        }
    }

    private async Task CloseAsync(string agentId, Guid connectionId)
    {
        try
        {
            await Task.Yield();
            await hub.CloseIfReplacedAsync(agentId, connectionId);
        }
        catch (Exception e) when (e is InvalidOperationException or ObjectDisposedException)
        {
            logger.LogInformation("Closing agent {AgentId}'s replaced connection: {Reason}", agentId, e.Message);
        }
    }
}

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

/// <summary>
/// Every <see cref="Every"/>, sends the agents held here their commands pending for more than <see cref="Overdue"/>:
/// NOTIFY is best-effort (lost while a listening connection re-opens), so it must not be the only path. A lost
/// notification therefore delays a command by at most Every + Overdue, 3 s; the query, on the open-commands index, runs
/// only while this replica holds agents.
/// </summary>
public sealed class CommandSweep(AgentHub hub, AgentCommandQueue commands, ILogger<CommandSweep> logger) : BackgroundService
{
    public static readonly TimeSpan Every = TimeSpan.FromSeconds(1);
    public static readonly TimeSpan Overdue = TimeSpan.FromSeconds(2);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Every);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                var held = hub.Connections.Select(c => c.AgentId).ToList();
                foreach (var agentId in await commands.AgentsWithOverdueCommandsAsync(held, Overdue, stoppingToken))
                {
                    logger.LogInformation("Sending agent {AgentId} commands whose notification was missed", agentId);
                    await hub.DeliverCommandsAsync(agentId, stoppingToken);
                }
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException && !stoppingToken.IsCancellationRequested)
            {
                logger.LogWarning("The command sweep failed ({Reason}); it runs again in {Seconds}s", e.Message, Every.TotalSeconds);
            }
        }
    }
}

/// <summary>The hub's step of the replica's graceful stop.</summary>
public sealed class AgentHubDrain(AgentHub hub) : IReplicaDrainStep
{
    public Task DrainAsync(CancellationToken cancellationToken) => hub.MoveAgentsAsync(cancellationToken);
}
