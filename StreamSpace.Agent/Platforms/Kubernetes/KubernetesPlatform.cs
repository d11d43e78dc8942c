using System.Net;
using System.Text.Json;
using k8s;
using k8s.Autorest;
using k8s.Models;
using StreamSpace.Agent.Tunnel;
using StreamSpace.Contracts;

namespace StreamSpace.Agent.Platforms.Kubernetes;

/// <summary>
/// Runs each session as a Deployment of one pod in the session namespace, with its VNC password and files key in a Secret the
/// Deployment owns and, for persistent homes, the user's PVC. This class carries out the commands; the session states
/// come from <see cref="KubernetesSessionWatch"/>, and the time limits from a <see cref="SessionClock"/>. Idle timeouts
/// and maximum durations travel on the pod as annotations, so an agent that restarts still enforces them. The tunnel
/// dials the pod IP from inside the cluster, and goes through the API server's pods/portforward from outside it
/// (<see cref="SessionTunnel"/>).
/// </summary>
public sealed class KubernetesPlatform : ISessionPlatform, IDisposable
{
    private static readonly TimeSpan FirstListTimeout = TimeSpan.FromSeconds(10);


    private readonly IKubernetes client;
    private readonly ILogger<KubernetesPlatform> logger;
    private readonly TimeProvider time;
    private readonly KubernetesChecks checks;
    private readonly SessionClock clock;
    private readonly KubernetesSessionWatch watch;
    private readonly SessionObjectClient objects;
    private readonly CancellationTokenSource stopping = new();

    /// <summary>Kept apart from <see cref="stopping"/>, which Dispose disposes while a clock tick may still run.</summary>
    private readonly CancellationToken stoppingToken;
    private int disposed;

    public KubernetesPlatform(AgentSettings settings, IConfiguration configuration, TimeProvider time, ILogger<KubernetesPlatform> logger)
    {
        this.logger = logger;
        this.time = time;
        var (config, inCluster) = KubernetesConnection.ClientConfiguration(configuration);
        Namespace = KubernetesConnection.SessionNamespace(settings, config);
        client = new k8s.Kubernetes(config);
        Tunnel = settings.SessionTunnel != SessionTunnel.Auto ? settings.SessionTunnel : inCluster ? SessionTunnel.PodIp : SessionTunnel.PortForward;
        checks = new KubernetesChecks(client, Namespace, settings, time, logger);
        objects = new SessionObjectClient(client, Namespace, settings, time, logger);
        clock = new SessionClock(time);
        watch = new KubernetesSessionWatch(client, Namespace, settings, checks, clock, logger);
        watch.SessionChanged += OnSessionChanged;
        stoppingToken = stopping.Token;
        logger.LogInformation("Kubernetes platform: API server {Server}, session namespace {Namespace}, VNC tunnel by {Tunnel}", config.Host, Namespace,
            Tunnel == SessionTunnel.PodIp ? "pod IP" : "pods/portforward through the API server");
    }

    /// <summary>Starts the watches on the session pods, home volumes and events, and the session clock.</summary>
    public Task StartMonitoringAsync(CancellationToken cancellationToken)
    {
        watch.Start(stoppingToken);
        clock.Start(EnforceAsync, logger);
        return Task.CompletedTask;
    }

    public string Name => "kubernetes";

    public string Namespace { get; }

    public SessionTunnel Tunnel { get; }

    public event Action<ReportedSession>? SessionChanged;

    public void NoteActivity(string sessionId) => clock.NoteInput(sessionId);

    public async Task<IReadOnlyList<ReportedSession>> ListSessionsAsync(CancellationToken cancellationToken)
    {
        // The first pod list fills in states and pod IPs; without it a restarted agent would report bare deployment counts.
        await watch.FirstList.WaitAsync(FirstListTimeout, time, cancellationToken).ContinueWith(_ => { }, TaskScheduler.Default);
        V1DeploymentList deployments;
        try
        {
            deployments = await client.AppsV1.ListNamespacedDeploymentAsync(Namespace, labelSelector: SessionObjects.Selector, cancellationToken: cancellationToken);
        }
        catch (Exception e) when (e is HttpOperationException or HttpRequestException)
        {
            // A heartbeat must not fail because the API server is briefly away: report what the watch last saw.
            logger.LogWarning("Listing session Deployments in {Namespace} failed ({Reason}); reporting the last known states", Namespace, e.Message);
            return watch.AllReported();
        }

        var sessions = new Dictionary<string, ReportedSession>();
        foreach (var deployment in deployments.Items)
        {
            if (deployment.Metadata.Labels?.TryGetValue(SessionObjects.SessionIdLabel, out var id) is true && deployment.Metadata.DeletionTimestamp is null)
            {
                sessions[id] = watch.Reported(id) ?? FromDeployment(id, deployment);
            }
        }

        // A failure the control plane may have missed while disconnected; its Deployment is already gone.
        foreach (var failed in watch.AllReported().Where(s => s.State == SessionState.Failed))
        {
            sessions.TryAdd(failed.SessionId, failed);
        }

        return [.. sessions.Values];
    }

    public async Task<ReportedSession> StartAsync(SessionCommandPayload session, CancellationToken cancellationToken)
    {
        var id = session.SessionId;
        // A start while starting goes on: creating again is harmless (409) and repairs a half-made session.
        if (watch.Reported(id) is { State: SessionState.Running } current)
        {
            return current;
        }

        if (session.Template.PersistentHome)
        {
            await objects.CreateHomeClaimAsync(session, cancellationToken);
        }

        watch.Starting(id);
        var deployment = await objects.CreateDeploymentAsync(session, cancellationToken);
        await objects.CreatePasswordSecretAsync(session, deployment, cancellationToken);
        return watch.Reported(id) ?? new ReportedSession(id, SessionState.Starting);
    }

    public async Task<ReportedSession> StopAsync(string sessionId, CancellationToken cancellationToken)
    {
        await objects.DeleteDeploymentAsync(sessionId, cancellationToken);
        watch.Forget(sessionId);
        return new ReportedSession(sessionId, SessionState.Stopped);
    }

    public Task<IReadOnlyList<AgentCheck>> CheckAsync(CancellationToken cancellationToken) => checks.CheckAsync(cancellationToken);

    public Task<ReportedSession> HibernateAsync(SessionCommandPayload session, CancellationToken cancellationToken) =>
        HibernateAsync(session.SessionId, cancellationToken);

    private async Task<ReportedSession> HibernateAsync(string id, CancellationToken cancellationToken)
    {
        var hibernated = watch.Hibernated(id);
        if (!await objects.ScaleAsync(id, 0, cancellationToken))
        {
            logger.LogInformation("Session {SessionId}: no Deployment to hibernate; waking it will create one", id);
        }

        return hibernated;
    }

    public async Task<ReportedSession> WakeAsync(SessionCommandPayload session, CancellationToken cancellationToken)
    {
        var id = session.SessionId;
        var starting = watch.Starting(id, restart: true);
        if (!await objects.ScaleAsync(id, 1, cancellationToken))
        {
            // The Deployment is gone (deleted by hand, or never created): the payload has everything to start afresh.
            return await StartAsync(session, cancellationToken);
        }

        return starting;
    }

    public async Task<VncEndpoint?> FindVncAsync(string sessionId, CancellationToken cancellationToken)
    {
        if (watch.RunningAt(sessionId) is not { } address)
        {
            return null;
        }

        var secret = await client.CoreV1.ReadNamespacedSecretAsync(SessionObjects.SecretName(sessionId), Namespace, cancellationToken: cancellationToken);
        var endpoint = new VncEndpoint(address.PodIp, address.Port, SessionObjects.TunnelPassword(secret)) { ViewOnlyPassword = SessionObjects.TunnelViewOnlyPassword(secret) };
        return Tunnel == SessionTunnel.PodIp
            ? endpoint
            : endpoint with { Connect = token => PortForwardAsync(address.PodName, address.Port, token) };
    }

    /// <summary>A pod's home is not on this machine: its files go through <see cref="FindFileServiceAsync"/>; no service there means the session does not run here.</summary>
    public Task<SessionHome?> FindHomeAsync(string sessionId, CancellationToken cancellationToken) => Task.FromResult<SessionHome?>(null);

    /// <summary>
    /// The session pod's file service, reached as its VNC server is (the pod IP, or pods/portforward), with the files
    /// key from the Secret the VNC password comes from: no verb beyond those the tunnel already has.
    /// </summary>
    public async Task<SessionFileService?> FindFileServiceAsync(string sessionId, CancellationToken cancellationToken)
    {
        if (watch.RunningAt(sessionId) is not { } address)
        {
            return null;
        }

        V1Secret secret;
        try
        {
            secret = await client.CoreV1.ReadNamespacedSecretAsync(SessionObjects.SecretName(sessionId), Namespace, cancellationToken: cancellationToken);
        }
        catch (HttpOperationException e)
        {
            // Said to the user as it is: not mistaken for an agent without files on Kubernetes.
            throw new Files.FileRefusedException(502,
                $"The agent could not read the session's Secret {SessionObjects.SecretName(sessionId)} ({(int)e.Response.StatusCode} {e.Response.ReasonPhrase}); check the agent's Role and that the Secret exists.");
        }

        if (address.FilesPort is not { } port || SessionObjects.FilesKey(secret) is not { } key)
        {
            throw new Files.FileRefusedException(409, "This session was started before files worked on Kubernetes; stop it and start it again to upload and download files.");
        }

        return Tunnel == SessionTunnel.PodIp
            ? new SessionFileService(token => TcpDial.ConnectAsync(address.PodIp, port, token), key)
            : new SessionFileService(token => PortForwardAsync(address.PodName, port, token), key);
    }

    /// <summary>A pod's sound goes through its file service (<see cref="FindFileServiceAsync"/>): asked here, the session does not run here.</summary>
    public Task<SessionSound?> FindSoundAsync(string sessionId, CancellationToken cancellationToken) => Task.FromResult<SessionSound?>(null);

    /// <summary>A stream to the pod's port through the API server, for an agent outside the cluster network.</summary>
    private async Task<Stream> PortForwardAsync(string podName, int port, CancellationToken cancellationToken)
    {
        var socket = await client.WebSocketNamespacedPodPortForwardAsync(podName, Namespace, [port], WebSocketProtocol.V4BinaryWebsocketProtocol,
            cancellationToken: cancellationToken);
        return new PortForwardStream(socket, port);
    }

    /// <summary>A failed session's Deployment goes, so that nothing keeps retrying for a session that is over.</summary>
    private void OnSessionChanged(ReportedSession session)
    {
        SessionChanged?.Invoke(session);
        if (session.State == SessionState.Failed)
        {
            _ = objects.DeleteDeploymentAsync(session.SessionId, CancellationToken.None).ContinueWith(
                t => logger.LogWarning("Session {SessionId}: could not delete the failed session's Deployment: {Reason}", session.SessionId, t.Exception?.GetBaseException().Message),
                TaskContinuationOptions.OnlyOnFaulted);
        }
    }

    /// <summary>
    /// Fails a session still starting at its start timeout, hibernates a running one no viewer has sent input to for its
    /// idle timeout, and stops one past its maximum duration.
    /// </summary>
    private async Task EnforceAsync(SessionLimitReached reached)
    {
        var id = reached.SessionId;
        switch (reached.Limit)
        {
            case SessionLimit.StartTimeout:
                watch.FailIfStillStarting(id);
                break;
            // Decided and marked under the watch's lock, so a user's stop or hibernate in between wins.
            case SessionLimit.IdleTimeout when watch.HibernatedIfRunning(id) is { } hibernated:
                logger.LogInformation("Session {SessionId}: no input for {Idle:0}s; hibernating it", id, reached.Elapsed.TotalSeconds);
                await objects.ScaleAsync(id, 0, stoppingToken);
                SessionChanged?.Invoke(hibernated);
                break;
            case SessionLimit.MaxDuration when watch.ForgetIfRunning(id):
                logger.LogInformation("Session {SessionId}: reached its maximum duration; stopping it", id);
                await objects.DeleteDeploymentAsync(id, stoppingToken);
                SessionChanged?.Invoke(new ReportedSession(id, SessionState.Stopped));
                break;
        }
    }

    private static ReportedSession FromDeployment(string sessionId, V1Deployment deployment) =>
        deployment.Spec?.Replicas == 0 ? new ReportedSession(sessionId, SessionState.Hibernated)
        : (deployment.Status?.ReadyReplicas ?? 0) >= 1 ? new ReportedSession(sessionId, SessionState.Running)
        : new ReportedSession(sessionId, SessionState.Starting);

    /// <summary>Runs twice: the container disposes the platform under both of its registrations.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref disposed, 1) == 1)
        {
            return;
        }

        stopping.Cancel();
        clock.Dispose();
        client.Dispose();
        stopping.Dispose();
    }

}
