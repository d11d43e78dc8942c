using System.Net;
using System.Net.WebSockets;
using System.Text;
using StreamSpace.Contracts;

namespace StreamSpace.Tests.Infrastructure;

/// <summary>A hand-driven agent connection, for what the real agent never does: bad frames, silence, old protocols.</summary>
public sealed class RawAgentSocket(ClientWebSocket socket) : IDisposable
{
    public ClientWebSocket Socket => socket;

    /// <summary>Connects; returns the HTTP status of a refused upgrade instead of a socket.</summary>
    public static async Task<(RawAgentSocket? Socket, HttpStatusCode Status)> ConnectAsync(Uri hubUrl, string agentId, string? key)
    {
        var client = new ClientWebSocket();
        client.Options.CollectHttpResponseDetails = true;
        client.Options.SetRequestHeader(AgentProtocol.AgentIdHeader, agentId);
        if (key is not null)
        {
            client.Options.SetRequestHeader("Authorization", $"Bearer {key}");
        }

        try
        {
            await client.ConnectAsync(hubUrl, CancellationToken.None);
            return (new RawAgentSocket(client), client.HttpStatusCode);
        }
        catch (WebSocketException)
        {
            var status = client.HttpStatusCode;
            client.Dispose();
            return (null, status);
        }
    }

    public static async Task<RawAgentSocket> ConnectAcceptedAsync(Uri hubUrl, string agentId, string key)
    {
        var (socket, status) = await ConnectAsync(hubUrl, agentId, key);
        return socket ?? throw new InvalidOperationException($"The hub refused {agentId} with HTTP {(int)status}.");
    }

    public Task SendAsync(AgentMessage message) =>
        socket.SendAsync(AgentProtocol.Serialize(message), WebSocketMessageType.Text, true, CancellationToken.None);

    public Task SendTextAsync(string text) =>
        socket.SendAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, true, CancellationToken.None);

    public Task SendHelloAsync(int protocolVersion = AgentProtocol.Version, int heartbeatSeconds = 1) =>
        SendAsync(new HelloMessage(protocolVersion, "local", "test", "raw", new AgentCapacity(5, 0), heartbeatSeconds, []));

    /// <summary>Reads until the server closes; returns its close status and reason.</summary>
    public async Task<(WebSocketCloseStatus? Status, string? Reason)> WaitForCloseAsync(TimeSpan timeout)
    {
        var (status, reason, _) = await ReceiveUntilCloseAsync(timeout);
        return (status, reason);
    }

    /// <summary>Reads until the server closes; returns its close status and reason, and the messages it sent before.</summary>
    public async Task<(WebSocketCloseStatus? Status, string? Reason, IReadOnlyList<AgentMessage> Before)> ReceiveUntilCloseAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        var buffer = new byte[64 * 1024];
        var before = new List<AgentMessage>();
        while (true)
        {
            var result = await socket.ReceiveAsync(buffer, cts.Token);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                return (socket.CloseStatus, socket.CloseStatusDescription, before);
            }

            if (result.MessageType == WebSocketMessageType.Text)
            {
                before.Add(AgentProtocol.Deserialize(buffer.AsSpan(0, result.Count)));
            }
        }
    }

    public Task SendHeartbeatAsync() => SendAsync(new HeartbeatMessage(DateTimeOffset.UtcNow, new AgentCapacity(5, 0), []));

    public async Task<AgentMessage> ReceiveAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        var buffer = new byte[64 * 1024];
        var result = await socket.ReceiveAsync(buffer, cts.Token);
        return AgentProtocol.Deserialize(buffer.AsSpan(0, result.Count));
    }

    public void Dispose() => socket.Dispose();
}
