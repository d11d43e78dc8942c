using System.Net.WebSockets;
using System.Text.Json;
using StreamSpace.Agent.ControlPlane;
using StreamSpace.Contracts;

namespace StreamSpace.Bench.Agents;

/// <summary>One agent: connects, says hello, sends heartbeats, answers commands, reconnects like the real agent.</summary>
public sealed class SimulatedAgent(string id, string key, Uri url, TimeSpan heartbeat, HttpMessageInvoker invoker, SimulationCounters counters)
{
    public async Task RunAsync(CancellationToken stopping)
    {
        var random = new Random();
        var attempt = 0;
        while (!stopping.IsCancellationRequested)
        {
            using var socket = new ClientWebSocket();
            socket.Options.SetRequestHeader(AgentProtocol.AgentIdHeader, id);
            socket.Options.SetRequestHeader("Authorization", $"Bearer {key}");
            // The real agent's keep-alive, so the hub carries the same ping traffic.
            socket.Options.KeepAliveInterval = TimeSpan.FromSeconds(20);
            var welcomed = false;
            try
            {
                counters.Connect();
                await socket.ConnectAsync(url, invoker, stopping);
                await SendAsync(socket, new HelloMessage(AgentProtocol.Version, "simulated", "bench", "simulated",
                    new AgentCapacity(0, 0), (int)heartbeat.TotalSeconds, [], url.ToString()), stopping);
                await ServeAsync(socket, () =>
                {
                    welcomed = true;
                    attempt = 0;
                    counters.Welcome();
                }, stopping);
            }
            catch (Exception e) when (e is WebSocketException or HttpRequestException or IOException or JsonException)
            {
                counters.Failure();
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                return;
            }
            finally
            {
                if (welcomed)
                {
                    counters.Lost();
                }
            }

            await Task.Delay(Backoff.Delay(attempt++, random), stopping).ContinueWith(_ => { }, TaskScheduler.Default);
        }
    }

    /// <summary>Reads until the connection ends.</summary>
    private async Task ServeAsync(ClientWebSocket socket, Action onWelcome, CancellationToken stopping)
    {
        using var connection = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        var heartbeats = Task.CompletedTask;
        var buffer = new byte[4096];
        try
        {
            while (true)
            {
                var length = 0;
                ValueWebSocketReceiveResult result;
                do
                {
                    if (length == buffer.Length)
                    {
                        Array.Resize(ref buffer, buffer.Length * 2);
                    }

                    result = await socket.ReceiveAsync(buffer.AsMemory(length), connection.Token);
                    length += result.Count;
                }
                while (!result.EndOfMessage);

                if (result.MessageType == WebSocketMessageType.Close)
                {
                    return;
                }

                if (result.MessageType == WebSocketMessageType.Binary)
                {
                    continue;
                }

                switch (AgentProtocol.Deserialize(buffer.AsSpan(0, length)))
                {
                    case WelcomeMessage:
                        onWelcome();
                        heartbeats = SendHeartbeatsAsync(socket, connection.Token);
                        break;
                    case CommandMessage command:
                        // Simulated agents run nothing: they acknowledge and report the command failed, as an
                        // agent that cannot run the session would.
                        counters.Command();
                        await SendAsync(socket, new CommandAckMessage(command.CommandId), connection.Token);
                        await SendAsync(socket, new CommandResultMessage(command.CommandId, false, "simulated agents run no sessions"), connection.Token);
                        break;
                }
            }
        }
        finally
        {
            await connection.CancelAsync();
            await heartbeats.ContinueWith(_ => { }, TaskScheduler.Default);
        }
    }

    private async Task SendHeartbeatsAsync(ClientWebSocket socket, CancellationToken cancellationToken)
    {
        // The first heartbeat comes at a random point of the interval, so thousands of agents spread their
        // heartbeats over it as agents that started at different times do.
        await Task.Delay(Random.Shared.NextDouble() * heartbeat, cancellationToken);
        using var timer = new PeriodicTimer(heartbeat);
        do
        {
            await SendAsync(socket, new HeartbeatMessage(DateTimeOffset.UtcNow, new AgentCapacity(0, 0), []), cancellationToken);
            counters.Heartbeat();
        }
        while (await timer.WaitForNextTickAsync(cancellationToken));
    }

    private readonly SemaphoreSlim sendLock = new(1, 1);

    private async Task SendAsync(ClientWebSocket socket, AgentMessage message, CancellationToken cancellationToken)
    {
        var frame = AgentProtocol.Serialize(message);
        await sendLock.WaitAsync(cancellationToken);
        try
        {
            await socket.SendAsync(frame, WebSocketMessageType.Text, endOfMessage: true, cancellationToken);
        }
        finally
        {
            sendLock.Release();
        }
    }
}
