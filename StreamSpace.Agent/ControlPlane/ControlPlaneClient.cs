using StreamSpace.Agent.Metrics;
using System.Net.WebSockets;
using System.Reflection;
using System.Threading.Channels;
using StreamSpace.Agent.Commands;
using StreamSpace.Agent.Platforms;
using StreamSpace.Agent.Recording;
using StreamSpace.Agent.Tunnel;
using StreamSpace.Contracts;

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
    DataConnections dataConnections,
    SessionRecordings recordings,
    AgentMetrics metrics,
    TimeProvider time,
    ILogger<ControlPlaneClient> logger) : BackgroundService
{
    private static readonly string AgentVersion =
        typeof(ControlPlaneClient).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "dev";

    /// <summary>A dead replica (node loss) is noticed within KeepAliveInterval + KeepAliveTimeout, 10 s.</summary>
    public static readonly TimeSpan KeepAlive = TimeSpan.FromSeconds(5);

    /// <summary>Short, so a dial to a dead replica's address gives way to the next pick soon.</summary>
    public static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(3);

    /// <summary>After a replica said it is stopping (4005): a random wait up to this, with no backoff growth.</summary>
    public static readonly TimeSpan MoveJitter = TimeSpan.FromSeconds(1);

    private volatile AgentSocket? current;

    /// <summary>The connection whose hello was welcomed; answers go on it, whichever connection the command came on.</summary>
    private volatile AgentSocket? welcomed;

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
        recordings.Reported += OnRecordingReported;
        var random = new Random();
        string? lastProblem = null;
        var attempt = 0;
        while (!stoppingToken.IsCancellationRequested)
        {
            using var socket = new ClientWebSocket();
            socket.Options.SetRequestHeader(AgentProtocol.AgentIdHeader, settings.AgentId);
            socket.Options.SetRequestHeader("Authorization", $"Bearer {settings.AgentKey}");
            socket.Options.CollectHttpResponseDetails = true;
            socket.Options.KeepAliveInterval = KeepAlive;
            socket.Options.KeepAliveTimeout = KeepAlive;
            var moving = false;
            try
            {
                using (var connectTimeout = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken))
                {
                    connectTimeout.CancelAfter(ConnectTimeout);
                    await socket.ConnectAsync(url, connectTimeout.Token);
                }

                attempt = 0;
                var ended = await RunConnectionAsync(socket, stoppingToken);
                moving = socket.CloseStatus == AgentCloseCodes.ReplicaStopping;
                metrics.ControlReconnected(moving ? "replica_stopping" : "connection_lost");
                if (moving)
                {
                    // A rolling update, not a problem: the balancer sends the next connection to another replica.
                    logger.LogInformation("The control plane replica is stopping ({Reason}); connecting again", ended);
                }
                else
                {
                    lastProblem = $"connection closed: {ended}";
                    LastProblem = lastProblem;
                    logger.LogWarning("Lost the connection to the control plane at {Url}: {Reason}. Reconnecting.", url, ended);
                }
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                var problem = ConnectionFailure.Describe(e, socket.HttpStatusCode == 0 ? null : socket.HttpStatusCode, url);
                metrics.ControlReconnected("connect_failed");
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
                welcomed = null;
            }

            if (!stoppingToken.IsCancellationRequested)
            {
                var delay = moving ? TimeSpan.FromMilliseconds(random.NextDouble() * MoveJitter.TotalMilliseconds) : Backoff.Delay(attempt++, random);
                await Task.Delay(delay, stoppingToken).ContinueWith(_ => { }, TaskScheduler.Default);
            }
        }

        platform.SessionChanged -= OnSessionChanged;
        recordings.Reported -= OnRecordingReported;
    }

    /// <summary>Runs one connection until it ends; returns why it ended.</summary>
    private async Task<string> RunConnectionAsync(ClientWebSocket webSocket, CancellationToken stoppingToken)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        var socket = new AgentSocket(webSocket, time);
        current = socket;
        var writer = socket.RunWriterAsync(stop.Token);
        var heartbeats = Task.CompletedTask;
        try
        {
            var sessions = await platform.ListSessionsAsync(stop.Token);
            await socket.SendAsync(new HelloMessage(settings.ProtocolVersion, platform.Name, settings.Region, AgentVersion,
                Capacity(sessions), (int)Math.Ceiling(settings.HeartbeatInterval.TotalSeconds), sessions, new UriBuilder(settings.HubUrl) { UserName = "", Password = "" }.Uri.ToString()), stop.Token);
            while (await socket.ReceiveAsync(stop.Token) is { } message)
            {
                switch (message)
                {
                    case WelcomeMessage welcome:
                        IsConnected = true;
                        LastProblem = null;
                        welcomed = socket;
                        logger.LogInformation("Connected to the control plane as {AgentId}; {Sessions} sessions reported", settings.AgentId, sessions.Count);
                        orphans.Schedule(welcome.UnownedSessionIds ?? []);
                        heartbeats = SendHeartbeatsAsync(socket, stop.Token);
                        foreach (var recording in ReportsRecordings ? recordings.CurrentReports() : [])
                        {
                            // Reports are idempotent by recording id: what a lost connection swallowed is said again here.
                            await socket.SendAsync(recording, stop.Token);
                        }

                        break;
                    case CommandMessage command:
                        _ = CarryOutAsync(socket, command, stop.Token);
                        break;
                    case TunnelOpenMessage open:
                        _ = tunnels.RunAsync(socket, open, stop.Token);
                        break;
                    case StreamOpenMessage open:
                        // The host's token, not this connection's: the viewer's data connection outlives the control socket.
                        _ = dataConnections.RunAsync(open, stoppingToken);
                        break;
                    case RecordSessionMessage record:
                        _ = recordings.RecordAsync(record.SessionId);
                        break;
                    case DeleteRecordingMessage delete:
                        _ = recordings.DeleteAsync(delete.RecordingId);
                        break;
                    default:
                        logger.LogWarning("Ignoring an unexpected {Type} from the control plane", message.GetType().Name);
                        break;
                }
            }

            return $"{(int?)webSocket.CloseStatus} {webSocket.CloseStatusDescription}".Trim() is { Length: > 0 } reason ? reason : "closed";
        }
        catch (ProtocolViolationException e)
        {
            return $"the control plane broke the protocol: {e.Message}";
        }
        finally
        {
            socket.CloseTunnels("the control plane connection closed");
            await stop.CancelAsync();
            await heartbeats.ContinueWith(_ => { }, TaskScheduler.Default);
            await writer.ContinueWith(_ => { }, TaskScheduler.Default);
        }
    }

    /// <summary>Heartbeats at the interval. The platform's checks go first on each connection, then whenever they change.</summary>
    private async Task SendHeartbeatsAsync(AgentSocket socket, CancellationToken cancellationToken)
    {
        IReadOnlyList<AgentCheck>? sentChecks = null;
        using var timer = new PeriodicTimer(settings.HeartbeatInterval, time);
        while (true)
        {
            var checks = await platform.CheckAsync(cancellationToken);
            if (sentChecks is null || !checks.SequenceEqual(sentChecks))
            {
                await socket.SendAsync(new AgentChecksMessage(checks), cancellationToken);
                sentChecks = checks;
            }

            if (!await timer.WaitForNextTickAsync(cancellationToken))
            {
                return;
            }

            var sessions = await platform.ListSessionsAsync(cancellationToken);
            await socket.SendAsync(new HeartbeatMessage(time.GetUtcNow(), Capacity(sessions), sessions), cancellationToken);
            logger.LogDebug("Heartbeat sent with {Sessions} sessions", sessions.Count);
        }
    }

    /// <summary>
    /// Acks on the connection the command came on, then answers on the connection welcomed when the work is done: a
    /// command that outlives its connection (the replica stopped) answers on the next one, at once, rather than
    /// waiting for the control plane to send it again.
    /// </summary>
    private async Task CarryOutAsync(AgentSocket socket, CommandMessage command, CancellationToken cancellationToken)
    {
        try
        {
            await socket.SendAsync(new CommandAckMessage(command.CommandId), cancellationToken);
            var result = await executor.ExecuteAsync(command);
            if ((welcomed ?? socket) is { } answerOn)
            {
                await answerOn.SendAsync(result, answerOn == socket ? cancellationToken : CancellationToken.None);
            }
        }
        catch (Exception e) when (e is ChannelClosedException or OperationCanceledException)
        {
            // The connection dropped; the control plane sends the command again after we reconnect.
            logger.LogInformation("Could not answer command {CommandId} on this connection: {Reason}", command.CommandId, e.Message);
        }
    }

    private void OnSessionChanged(ReportedSession session)
    {
        if (current is { } socket && IsConnected)
        {
            _ = socket.SendAsync(new SessionStateMessage(session), CancellationToken.None).AsTask()
                .ContinueWith(t => logger.LogInformation("Session {SessionId} is {State}; the next heartbeat reports it ({Reason})",
                    session.SessionId, session.State.ToName(), t.Exception?.GetBaseException().Message), TaskContinuationOptions.OnlyOnFaulted);
        }
    }

    /// <summary>Sent while connected; otherwise the next welcome's <see cref="SessionRecordings.CurrentReports"/> carries the latest.</summary>
    private void OnRecordingReported(RecordingMessage recording)
    {
        if (ReportsRecordings && welcomed is { } socket)
        {
            _ = socket.SendAsync(recording, CancellationToken.None).AsTask()
                .ContinueWith(t => logger.LogInformation("Recording {RecordingId} is reported again on reconnect ({Reason})",
                    recording.RecordingId, t.Exception?.GetBaseException().Message), TaskContinuationOptions.OnlyOnFaulted);
        }
    }

    /// <summary>Only a hello of the media version may carry recordings; the mux path says hello as version 1.</summary>
    private bool ReportsRecordings => settings.ProtocolVersion >= AgentProtocol.MediaVersion;

    private AgentCapacity Capacity(IReadOnlyList<ReportedSession> sessions) =>
        new(settings.MaxSessions, sessions.Count(s => s.State is not (SessionState.Stopped or SessionState.Failed or SessionState.Hibernated)));
}
