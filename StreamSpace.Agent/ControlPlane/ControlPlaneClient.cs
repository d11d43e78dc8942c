using System.Buffers;
using System.Net.WebSockets;
using System.Reflection;
using StreamSpace.Agent.Commands;
using StreamSpace.Agent.Platforms;
using StreamSpace.Agent.Tunnel;
using StreamSpace.Contracts;
using StreamSpace.Contracts.Tunnel;

namespace StreamSpace.Agent.ControlPlane;

/// <summary>
/// The agent's one WebSocket to the control plane: connect out, say hello, send heartbeats, carry out commands,
/// report session changes, and reconnect with backoff whenever the connection is lost.
/// </summary>
public sealed class ControlPlaneClient(
    AgentSettings settings,
    ISessionPlatform platform,
    CommandExecutor executor,
    OrphanReaper orphans,
    AgentTunnels tunnels,
    TimeProvider time,
    ILogger<ControlPlaneClient> logger) : BackgroundService
{
    private static readonly string AgentVersion =
        typeof(ControlPlaneClient).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "dev";

    private readonly SemaphoreSlim sendLock = new(1, 1);
    private volatile ClientWebSocket? current;

    /// <summary>True while a hello has been welcomed; the agent's readiness probe reports this.</summary>
    public bool IsConnected { get; private set; }

    /// <summary>Why the agent is not connected, as last logged; null while connected or before the first attempt.</summary>
    public string? LastProblem { get; private set; }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var (url, change) = AgentSettings.NormalizeControlPlaneUrl(settings.ControlPlaneUrl);
        if (change is not null)
        {
            logger.LogInformation("CONTROL_PLANE_URL normalised to {Url} ({Change})", url, change);
        }

        logger.LogInformation("Agent started: id {AgentId}, platform {Platform}, control plane {Url}, heartbeat every {Interval}",
            settings.AgentId, platform.Name, url, StreamSpace.Settings.Duration.Format(settings.HeartbeatInterval));

        platform.SessionChanged += OnSessionChanged;
        var random = new Random();
        string? lastProblem = null;
        var attempt = 0;
        while (!stoppingToken.IsCancellationRequested)
        {
            using var socket = new ClientWebSocket();
            socket.Options.SetRequestHeader(AgentProtocol.AgentIdHeader, settings.AgentId);
            socket.Options.SetRequestHeader("Authorization", $"Bearer {settings.AgentKey}");
            socket.Options.CollectHttpResponseDetails = true;
            socket.Options.KeepAliveInterval = TimeSpan.FromSeconds(20);
            try
            {
                using (var connectTimeout = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken))
                {
                    connectTimeout.CancelAfter(TimeSpan.FromSeconds(15));
                    await socket.ConnectAsync(url, connectTimeout.Token);
                }

                attempt = 0;
                var ended = await RunConnectionAsync(socket, stoppingToken);
                lastProblem = $"connection closed: {ended}";
                LastProblem = lastProblem;
                logger.LogWarning("Lost the connection to the control plane at {Url}: {Reason}. Reconnecting.", url, ended);
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                var problem = ConnectionFailure.Describe(e, socket.HttpStatusCode == 0 ? null : socket.HttpStatusCode, url);
                if (problem != lastProblem)
                {
                    // Logged once per change of cause, not at every retry.
                    logger.LogWarning("Failed to connect to Control Plane at {Url}: {Cause}. Retrying with backoff (up to {Cap}s).", url, problem, Backoff.Cap.TotalSeconds);
                    lastProblem = problem;
                    LastProblem = problem;
                }
            }
            finally
            {
                IsConnected = false;
                current = null;
            }

            if (!stoppingToken.IsCancellationRequested)
            {
                await Task.Delay(Backoff.Delay(attempt++, random), stoppingToken).ContinueWith(_ => { }, TaskScheduler.Default);
            }
        }

        platform.SessionChanged -= OnSessionChanged;
    }

    /// <summary>Runs one connection until it ends; returns why it ended.</summary>
    private async Task<string> RunConnectionAsync(ClientWebSocket socket, CancellationToken stoppingToken)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        current = socket;
        var mux = new TunnelMux((frame, token) => SendBinaryAsync(socket, frame, token));
        var sessions = await platform.ListSessionsAsync(stop.Token);
        await SendAsync(socket, new HelloMessage(AgentProtocol.Version, platform.Name, settings.Region, AgentVersion,
            Capacity(sessions), (int)Math.Ceiling(settings.HeartbeatInterval.TotalSeconds), sessions, new UriBuilder(settings.HubUrl) { UserName = "", Password = "" }.Uri.ToString()), stop.Token);

        var heartbeats = Task.CompletedTask;
        try
        {
            while (true)
            {
                var (message, closeReason) = await ReceiveAsync(socket, mux, stop.Token);
                if (message is null)
                {
                    return closeReason ?? "closed";
                }

                switch (message)
                {
                    case WelcomeMessage welcome:
                        IsConnected = true;
                        LastProblem = null;
                        logger.LogInformation("Connected to the control plane as {AgentId}; {Sessions} sessions reported", settings.AgentId, sessions.Count);
                        orphans.Schedule(welcome.UnownedSessionIds ?? []);
                        heartbeats = SendHeartbeatsAsync(socket, stop.Token);
                        break;
                    case CommandMessage command:
                        _ = CarryOutAsync(socket, command, stop.Token);
                        break;
                    case TunnelOpenMessage open:
                        _ = tunnels.RunAsync(mux, open, reply => SendAsync(socket, reply, CancellationToken.None), stop.Token);
                        break;
                    case TunnelClosedMessage closed:
                        mux.Remove(closed.StreamId, closed.Reason);
                        break;
                    default:
                        logger.LogWarning("Ignoring an unexpected {Type} from the control plane", message.GetType().Name);
                        break;
                }
            }
        }
        finally
        {
            mux.CloseAll("the control plane connection closed");
            await stop.CancelAsync();
            await heartbeats.ContinueWith(_ => { }, TaskScheduler.Default);
        }
    }

    /// <summary>Heartbeats at the interval. The platform's checks go first on each connection, then whenever they change.</summary>
    private async Task SendHeartbeatsAsync(ClientWebSocket socket, CancellationToken cancellationToken)
    {
        byte[] sentChecks = [];
        using var timer = new PeriodicTimer(settings.HeartbeatInterval, time);
        while (true)
        {
            var checks = AgentProtocol.Serialize(new AgentChecksMessage(await platform.CheckAsync(cancellationToken)));
            if (!checks.AsSpan().SequenceEqual(sentChecks))
            {
                await SendFrameAsync(socket, checks, cancellationToken);
                sentChecks = checks;
            }

            if (!await timer.WaitForNextTickAsync(cancellationToken))
            {
                return;
            }

            var sessions = await platform.ListSessionsAsync(cancellationToken);
            await SendAsync(socket, new HeartbeatMessage(time.GetUtcNow(), Capacity(sessions), sessions), cancellationToken);
            logger.LogDebug("Heartbeat sent with {Sessions} sessions", sessions.Count);
        }
    }

    private async Task CarryOutAsync(ClientWebSocket socket, CommandMessage command, CancellationToken cancellationToken)
    {
        try
        {
            await SendAsync(socket, new CommandAckMessage(command.CommandId), cancellationToken);
            var result = await executor.ExecuteAsync(command);
            await SendAsync(socket, result, cancellationToken);
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException)
        {
            // The connection dropped; the control plane sends the command again after we reconnect.
            logger.LogInformation("Could not answer command {CommandId} on this connection: {Reason}", command.CommandId, e.Message);
        }
    }

    private void OnSessionChanged(ReportedSession session)
    {
        if (current is { } socket && IsConnected)
        {
            _ = SendAsync(socket, new SessionStateMessage(session), CancellationToken.None)
                .ContinueWith(t => logger.LogInformation("Session {SessionId} is {State}; the next heartbeat reports it ({Reason})",
                    session.SessionId, session.State.ToName(), t.Exception?.GetBaseException().Message), TaskContinuationOptions.OnlyOnFaulted);
        }
    }

    private AgentCapacity Capacity(IReadOnlyList<ReportedSession> sessions) =>
        new(settings.MaxSessions, sessions.Count(s => s.State is not (SessionState.Stopped or SessionState.Failed or SessionState.Hibernated)));

    private Task SendAsync(ClientWebSocket socket, AgentMessage message, CancellationToken cancellationToken) =>
        SendFrameAsync(socket, AgentProtocol.Serialize(message), cancellationToken);

    private async Task SendFrameAsync(ClientWebSocket socket, byte[] frame, CancellationToken cancellationToken)
    {
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

    private async ValueTask SendBinaryAsync(ClientWebSocket socket, ReadOnlyMemory<byte> frame, CancellationToken cancellationToken)
    {
        await sendLock.WaitAsync(cancellationToken);
        try
        {
            await socket.SendAsync(frame, WebSocketMessageType.Binary, endOfMessage: true, cancellationToken);
        }
        finally
        {
            sendLock.Release();
        }
    }

    /// <summary>The next control message; tunnel data frames met on the way are handed to their streams.</summary>
    private static async Task<(AgentMessage? Message, string? CloseReason)> ReceiveAsync(ClientWebSocket socket, TunnelMux mux, CancellationToken cancellationToken)
    {
        var writer = new ArrayBufferWriter<byte>(TunnelFrame.MaxPayload + TunnelFrame.HeaderLength);
        while (true)
        {
            var result = await socket.ReceiveAsync(writer.GetMemory(16 * 1024), cancellationToken);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                return (null, $"{(int?)socket.CloseStatus} {socket.CloseStatusDescription}".Trim());
            }

            writer.Advance(result.Count);
            if (writer.WrittenCount > AgentProtocol.MaxTextFrameBytes)
            {
                throw new WebSocketException("the control plane sent an oversized frame");
            }

            if (!result.EndOfMessage)
            {
                continue;
            }

            if (result.MessageType == WebSocketMessageType.Binary)
            {
                if (!mux.Dispatch(writer.WrittenSpan))
                {
                    throw new WebSocketException("the control plane sent a malformed tunnel frame");
                }

                writer.ResetWrittenCount();
                continue;
            }

            return (AgentProtocol.Deserialize(writer.WrittenSpan), null);
        }
    }
}
