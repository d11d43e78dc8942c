using StreamSpace.Agent.Tunnel;
using System.Collections.Concurrent;
using System.Net;
using System.Text.Json;
using k8s;
using k8s.Autorest;
using k8s.Models;
using StreamSpace.Contracts;

namespace StreamSpace.Agent.Platforms.Kubernetes;

/// <summary>
/// Runs each session as a Deployment of one pod in the session namespace, with its VNC password in a Secret the
/// Deployment owns and, for persistent homes, the user's PVC. Session state comes from watches (not polling) on the
/// session pods, the home PVCs and the namespace's events, so readiness, failures and the reasons a session waits reach
/// the control plane as they happen. Idle timeouts and maximum durations travel on the pod as annotations, so an agent
/// that restarts still enforces them. The tunnel dials the pod IP from inside the cluster, and goes through the API
/// server's pods/portforward from outside it (<see cref="SessionTunnel"/>).
/// </summary>
public sealed class KubernetesPlatform : ISessionPlatform, IDisposable
{
    private const string InClusterNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";
    private static readonly TimeSpan FirstListTimeout = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan WatchRetryDelay = TimeSpan.FromSeconds(1);

    private readonly IKubernetes client;
    private readonly AgentSettings settings;
    private readonly ILogger<KubernetesPlatform> logger;
    private readonly TimeProvider time;

    /// <summary>The last state reported for each session this agent knows, so that heartbeats and events agree.</summary>
    private readonly ConcurrentDictionary<string, ReportedSession> known = new();

    /// <summary>Where each ready session's VNC server listens.</summary>
    private readonly ConcurrentDictionary<string, (string PodIp, int Port, string PodName)> addresses = new();

    /// <summary>Each session's current pod as last seen, to map it again when one of its events or its home PVC changes.</summary>
    private readonly ConcurrentDictionary<string, V1Pod> pods = new();

    /// <summary>The home PVCs that are Pending (not yet bound to a volume).</summary>
    private readonly ConcurrentDictionary<string, bool> pendingClaims = new();

    /// <summary>The newest event about each PVC, which says why it is Pending (ProvisioningFailed, WaitForFirstConsumer, …).</summary>
    private readonly ConcurrentDictionary<string, PodEvent> claimEvents = new();

    /// <summary>The newest warning about each pod (FailedScheduling, FailedMount, Failed, …), for reasons its status lacks.</summary>
    private readonly ConcurrentDictionary<string, PodEvent> podEvents = new();

    /// <summary>Observe runs for three watches; one at a time keeps each session's reports in order.</summary>
    private readonly Lock observing = new();
    private readonly KubernetesChecks checks;

    /// <summary>When a session that is still starting fails instead.</summary>
    private readonly ConcurrentDictionary<string, DateTimeOffset> startDeadlines = new();

    /// <summary>Each running session's idle timeout and maximum duration (from its pod's annotations), and since when it runs.</summary>
    private readonly ConcurrentDictionary<string, (TimeSpan? IdleTimeout, TimeSpan? MaxDuration, DateTimeOffset RunningSince)> limits = new();

    /// <summary>When a viewer last sent input to each session.</summary>
    private readonly ConcurrentDictionary<string, DateTimeOffset> lastActivity = new();

    private readonly TaskCompletionSource firstList = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource stopping = new();

    /// <summary>Kept apart from <see cref=SessionState.Stopping/>, which Dispose disposes while a timer callback may still run.</summary>
    private readonly CancellationToken stoppingToken;
    private readonly ITimer sessionClock;
    private int clockBusy;
    private int disposed;

    public KubernetesPlatform(AgentSettings settings, IConfiguration configuration, TimeProvider time, ILogger<KubernetesPlatform> logger)
    {
        this.settings = settings;
        this.logger = logger;
        this.time = time;
        var (config, inCluster) = ClientConfiguration(configuration);
        Namespace = SessionNamespace(settings, config);
        client = new k8s.Kubernetes(config);
        Tunnel = settings.SessionTunnel != SessionTunnel.Auto ? settings.SessionTunnel : inCluster ? SessionTunnel.PodIp : SessionTunnel.PortForward;
        checks = new KubernetesChecks(client, Namespace, settings, time, logger);
        logger.LogInformation("Kubernetes platform: API server {Server}, session namespace {Namespace}, VNC tunnel by {Tunnel}", config.Host, Namespace,
            Tunnel == SessionTunnel.PodIp ? "pod IP" : "pods/portforward through the API server");
        stoppingToken = stopping.Token;
        _ = WatchAsync("home volumes",
            token => client.CoreV1.ListNamespacedPersistentVolumeClaimAsync(Namespace, labelSelector: ManagedSelector, cancellationToken: token),
            (version, token) => client.CoreV1.WatchListNamespacedPersistentVolumeClaimAsync(Namespace, labelSelector: ManagedSelector, resourceVersion: version,
                onError: e => logger.LogWarning("Home volume watch error: {Reason}", e.Message), cancellationToken: token),
            list => (list.Items, list.Metadata.ResourceVersion), ObserveClaim, stoppingToken);
        _ = WatchAsync("events",
            token => client.CoreV1.ListNamespacedEventAsync(Namespace, cancellationToken: token),
            (version, token) => client.CoreV1.WatchListNamespacedEventAsync(Namespace, resourceVersion: version,
                onError: e => logger.LogWarning("Event watch error: {Reason}", e.Message), cancellationToken: token),
            list => (list.Items, list.Metadata.ResourceVersion), ObserveEvent, stoppingToken);
        _ = WatchAsync("session pods",
            token => client.CoreV1.ListNamespacedPodAsync(Namespace, labelSelector: SessionObjects.Selector, cancellationToken: token),
            (version, token) => client.CoreV1.WatchListNamespacedPodAsync(Namespace, labelSelector: SessionObjects.Selector, resourceVersion: version,
                onError: e => logger.LogWarning("Pod watch error: {Reason}", e.Message), cancellationToken: token),
            list => (list.Items, list.Metadata.ResourceVersion), ObservePod, stoppingToken, firstList);
        sessionClock = time.CreateTimer(_ => _ = EnforceTimeLimitsAsync(), null, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
    }

    public string Name => "kubernetes";

    public string Namespace { get; }

    public SessionTunnel Tunnel { get; }

    /// <summary>The home PVCs carry the managed-by label but not app=session.</summary>
    private const string ManagedSelector = $"{SessionObjects.ManagedByLabel}={SessionObjects.ManagedByValue}";

    public event Action<ReportedSession>? SessionChanged;

    public void NoteActivity(string sessionId) => lastActivity[sessionId] = time.GetUtcNow();

    public async Task<IReadOnlyList<ReportedSession>> ListSessionsAsync(CancellationToken cancellationToken)
    {
        // The first pod list fills in states and pod IPs; without it a restarted agent would report bare deployment counts.
        await firstList.Task.WaitAsync(FirstListTimeout, cancellationToken).ContinueWith(_ => { }, TaskScheduler.Default);
        V1DeploymentList deployments;
        try
        {
            deployments = await client.AppsV1.ListNamespacedDeploymentAsync(Namespace, labelSelector: SessionObjects.Selector, cancellationToken: cancellationToken);
        }
        catch (Exception e) when (e is HttpOperationException or HttpRequestException)
        {
            // A heartbeat must not fail because the API server is briefly away: report what the watch last saw.
            logger.LogWarning("Listing session Deployments in {Namespace} failed ({Reason}); reporting the last known states", Namespace, e.Message);
            return [.. known.Values];
        }

        var sessions = new Dictionary<string, ReportedSession>();
        foreach (var deployment in deployments.Items)
        {
            if (deployment.Metadata.Labels?.TryGetValue(SessionObjects.SessionIdLabel, out var id) is true && deployment.Metadata.DeletionTimestamp is null)
            {
                sessions[id] = known.TryGetValue(id, out var reported) ? reported : FromDeployment(id, deployment);
            }
        }

        // A failure the control plane may have missed while disconnected; its Deployment is already gone.
        foreach (var failed in known.Values.Where(s => s.State == SessionState.Failed))
        {
            sessions.TryAdd(failed.SessionId, failed);
        }

        return [.. sessions.Values];
    }

    public async Task<ReportedSession> StartAsync(SessionCommandPayload session, CancellationToken cancellationToken)
    {
        var id = session.SessionId;
        // A start while starting goes on: creating again is harmless (409) and repairs a half-made session.
        if (known.TryGetValue(id, out var current) && current.State == SessionState.Running)
        {
            return current;
        }

        var deployment = SessionObjects.Deployment(session, settings);
        if (session.Template.PersistentHome)
        {
            await CreateHomeClaimAsync(session, cancellationToken);
        }

        if (known.GetValueOrDefault(id)?.State != SessionState.Starting)
        {
            known[id] = new ReportedSession(id, SessionState.Starting);
            startDeadlines[id] = time.GetUtcNow() + settings.SessionStartTimeout;
        }

        try
        {
            deployment = await client.AppsV1.CreateNamespacedDeploymentAsync(deployment, Namespace, cancellationToken: cancellationToken);
            logger.LogInformation("Session {SessionId}: created Deployment {Deployment} ({Image}) for {User}",
                id, deployment.Metadata.Name, session.Template.Image, session.Username);
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.Conflict)
        {
            // A repeated start: the Deployment exists, and its Secret may not yet.
            deployment = await client.AppsV1.ReadNamespacedDeploymentAsync(deployment.Metadata.Name, Namespace, cancellationToken: cancellationToken);
            logger.LogInformation("Session {SessionId}: Deployment {Deployment} exists already; using it", id, deployment.Metadata.Name);
        }

        try
        {
            await client.CoreV1.CreateNamespacedSecretAsync(SessionObjects.PasswordSecret(session, deployment, VncPasswordFile.NewPassword()), Namespace,
                cancellationToken: cancellationToken);
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.Conflict)
        {
            // Created by an earlier start; the pod already uses that password.
        }

        return known.TryGetValue(id, out var reported) ? reported : new ReportedSession(id, SessionState.Starting);
    }

    public async Task<ReportedSession> StopAsync(string sessionId, CancellationToken cancellationToken)
    {
        await DeleteDeploymentAsync(sessionId, cancellationToken);
        Forget(sessionId);
        return new ReportedSession(sessionId, SessionState.Stopped);
    }

    public Task<IReadOnlyList<AgentCheck>> CheckAsync(CancellationToken cancellationToken) => checks.CheckAsync(cancellationToken);

    public Task<ReportedSession> HibernateAsync(SessionCommandPayload session, CancellationToken cancellationToken) =>
        HibernateAsync(session.SessionId, cancellationToken);

    private async Task<ReportedSession> HibernateAsync(string id, CancellationToken cancellationToken)
    {
        known[id] = new ReportedSession(id, SessionState.Hibernated);
        addresses.TryRemove(id, out _);
        limits.TryRemove(id, out _);
        startDeadlines.TryRemove(id, out _);
        if (!await ScaleAsync(id, 0, cancellationToken))
        {
            logger.LogInformation("Session {SessionId}: no Deployment to hibernate; waking it will create one", id);
        }

        return known[id];
    }

    public async Task<ReportedSession> WakeAsync(SessionCommandPayload session, CancellationToken cancellationToken)
    {
        var id = session.SessionId;
        known[id] = new ReportedSession(id, SessionState.Starting);
        startDeadlines[id] = time.GetUtcNow() + settings.SessionStartTimeout;
        if (!await ScaleAsync(id, 1, cancellationToken))
        {
            // The Deployment is gone (deleted by hand, or never created): the payload has everything to start afresh.
            known.TryRemove(id, out _);
            return await StartAsync(session, cancellationToken);
        }

        return known[id];
    }

    public async Task<VncEndpoint?> FindVncAsync(string sessionId, CancellationToken cancellationToken)
    {
        if (!known.TryGetValue(sessionId, out var session) || session.State != SessionState.Running || !addresses.TryGetValue(sessionId, out var address))
        {
            return null;
        }

        var secret = await client.CoreV1.ReadNamespacedSecretAsync(SessionObjects.SecretName(sessionId), Namespace, cancellationToken: cancellationToken);
        var password = SessionObjects.TunnelPassword(secret);
        return Tunnel == SessionTunnel.PodIp
            ? new VncEndpoint(address.PodIp, address.Port, password)
            : new VncEndpoint(address.PodIp, address.Port, password) { Connect = token => PortForwardAsync(address.PodName, address.Port, token) };
    }

    /// <summary>A stream to the pod's port through the API server, for an agent outside the cluster network.</summary>
    private async Task<Stream> PortForwardAsync(string podName, int port, CancellationToken cancellationToken)
    {
        var socket = await client.WebSocketNamespacedPodPortForwardAsync(podName, Namespace, [port], WebSocketProtocol.V4BinaryWebsocketProtocol,
            cancellationToken: cancellationToken);
        return new PortForwardStream(socket, port);
    }

    private async Task CreateHomeClaimAsync(SessionCommandPayload session, CancellationToken cancellationToken)
    {
        try
        {
            await client.CoreV1.CreateNamespacedPersistentVolumeClaimAsync(SessionObjects.HomeClaim(session, settings), Namespace, cancellationToken: cancellationToken);
            logger.LogInformation("Created home volume {Claim} for {User}", SessionObjects.HomeClaimName(session.Username), session.Username);
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.Conflict)
        {
            // The user's home from an earlier session: reused, which is the point.
        }
    }

    /// <summary>Sets the Deployment's replicas through its scale subresource; false when the Deployment does not exist.</summary>
    private async Task<bool> ScaleAsync(string sessionId, int replicas, CancellationToken cancellationToken)
    {
        // A merge patch names no resourceVersion, so it cannot hit a 409 Conflict the way a read-modify-replace can.
        var patch = new V1Patch(JsonSerializer.Serialize(new { spec = new { replicas } }), V1Patch.PatchType.MergePatch);
        try
        {
            await client.AppsV1.PatchNamespacedDeploymentScaleAsync(patch, SessionObjects.DeploymentName(sessionId), Namespace, cancellationToken: cancellationToken);
            logger.LogInformation("Session {SessionId}: scaled to {Replicas}", sessionId, replicas);
            return true;
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
        {
            return false;
        }
    }

    /// <summary>Deletes the session's Deployment; the garbage collector removes its pods and Secret. The home PVC has no owner and stays.</summary>
    private async Task DeleteDeploymentAsync(string sessionId, CancellationToken cancellationToken)
    {
        try
        {
            await client.AppsV1.DeleteNamespacedDeploymentAsync(SessionObjects.DeploymentName(sessionId), Namespace,
                propagationPolicy: "Background", cancellationToken: cancellationToken);
            logger.LogInformation("Session {SessionId}: deleted Deployment {Deployment}", sessionId, SessionObjects.DeploymentName(sessionId));
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
        {
            // Already gone: stopping a missing session succeeds.
        }
    }

    private void Forget(string sessionId)
    {
        known.TryRemove(sessionId, out _);
        limits.TryRemove(sessionId, out _);
        lastActivity.TryRemove(sessionId, out _);
        addresses.TryRemove(sessionId, out _);
        startDeadlines.TryRemove(sessionId, out _);
    }

    /// <summary>
    /// List once, then watch from that list's resourceVersion; when the watch ends or breaks, list again.
    /// <paramref name="firstListSeen"/> completes once the first list's items have been observed.
    /// </summary>
    private async Task WatchAsync<TList, T>(string what, Func<CancellationToken, Task<TList>> list,
        Func<string, CancellationToken, IAsyncEnumerable<(WatchEventType, T)>> watch, Func<TList, (IList<T> Items, string Version)> listed,
        Action<WatchEventType, T> observe, CancellationToken cancellationToken, TaskCompletionSource? firstListSeen = null)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                var (items, version) = listed(await list(cancellationToken));
                foreach (var item in items)
                {
                    observe(WatchEventType.Added, item);
                }

                firstListSeen?.TrySetResult();

                await foreach (var (type, item) in watch(version, cancellationToken))
                {
                    observe(type, item);
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                logger.LogWarning("Watching {What} in {Namespace} failed ({Reason}); listing again in {Delay}s", what, Namespace, e.Message, WatchRetryDelay.TotalSeconds);
            }

            try
            {
                await Task.Delay(WatchRetryDelay, time, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private void ObservePod(WatchEventType type, V1Pod pod)
    {
        if (pod.Metadata.Labels?.TryGetValue(SessionObjects.SessionIdLabel, out var id) is not true)
        {
            return;
        }

        if (type == WatchEventType.Deleted)
        {
            if (pods.TryGetValue(id, out var current) && current.Metadata.Name == pod.Metadata.Name)
            {
                pods.TryRemove(id, out _);
            }

            podEvents.TryRemove(pod.Metadata.Name, out _);
            return;
        }

        pods[id] = pod;
        Observe(pod);
    }

    private void ObserveClaim(WatchEventType type, V1PersistentVolumeClaim claim)
    {
        var name = claim.Metadata.Name;
        if (type != WatchEventType.Deleted && claim.Status?.Phase == "Pending")
        {
            pendingClaims[name] = true;
        }
        else
        {
            pendingClaims.TryRemove(name, out _);
        }

        ObserveAgain(pod => ClaimOf(pod) == name);
    }

    private void ObserveEvent(WatchEventType type, Corev1Event change)
    {
        if (type == WatchEventType.Deleted || change.InvolvedObject?.Name is not { } name || change.Message is null)
        {
            return;
        }

        var happened = change.LastTimestamp ?? change.EventTime ?? change.Metadata.CreationTimestamp ?? DateTime.MinValue;
        var news = new PodEvent(change.Reason ?? "", change.Message.Trim(), happened);
        switch (change.InvolvedObject.Kind)
        {
            case "PersistentVolumeClaim":
                // Normal events count too: WaitForFirstConsumer and ExternalProvisioning say why a claim waits.
                if (Newer(claimEvents, name, news))
                {
                    ObserveAgain(pod => ClaimOf(pod) == name);
                }

                break;
            case "Pod" when change.Type == "Warning" && Newer(podEvents, name, news):
                if (PodStates.IsImagePullFailure(news) && pods.Values.FirstOrDefault(p => p.Metadata.Name == name) is { } failing)
                {
                    NoteImagePullFailure(failing, news.Message);
                }

                ObserveAgain(pod => pod.Metadata.Name == name);
                break;
        }
    }

    /// <summary>Keeps the newest event per object: a list returns events in no particular order.</summary>
    private static bool Newer(ConcurrentDictionary<string, PodEvent> events, string name, PodEvent news)
    {
        var kept = events.AddOrUpdate(name, news, (_, old) => news.At >= old.At ? news : old);
        return ReferenceEquals(kept, news);
    }

    private void ObserveAgain(Func<V1Pod, bool> which)
    {
        foreach (var pod in pods.Values.Where(which))
        {
            Observe(pod);
        }
    }

    private static string? ClaimOf(V1Pod pod) => pod.Spec?.Volumes?.FirstOrDefault(v => v.PersistentVolumeClaim is not null)?.PersistentVolumeClaim.ClaimName;

    /// <summary>Why the pod's home volume keeps it waiting, when its PVC is Pending.</summary>
    private string? HomeVolumePending(V1Pod pod) =>
        ClaimOf(pod) is { } claim && pendingClaims.ContainsKey(claim)
            ? claimEvents.TryGetValue(claim, out var news) ? news.Message : $"persistentvolumeclaim {claim} is Pending"
            : null;

    private void NoteImagePullFailure(V1Pod pod, string message)
    {
        if (pod.Spec?.Containers?.FirstOrDefault()?.Image is { } image)
        {
            checks.NoteImagePullFailure(image, pod.Metadata.Annotations?.TryGetValue(SessionObjects.TemplateAnnotation, out var template) is true ? template : "?", message);
        }
    }

    /// <summary>Maps a pod's status to its session's state and reports the session when that changed.</summary>
    private void Observe(V1Pod pod)
    {
        lock (observing)
        {
            ObserveLocked(pod);
        }
    }

    private void ObserveLocked(V1Pod pod)
    {
        if (pod.Metadata.DeletionTimestamp is not null || pod.Metadata.Labels?.TryGetValue(SessionObjects.SessionIdLabel, out var id) is not true)
        {
            return;
        }

        var previous = known.GetValueOrDefault(id);
        if (previous?.State is SessionState.Hibernated or SessionState.Failed)
        {
            return;
        }

        var state = PodStates.Of(pod, HomeVolumePending(pod), podEvents.GetValueOrDefault(pod.Metadata.Name));
        ReportedSession next;
        if (state.State == SessionState.Running)
        {
            var port = pod.Spec?.Containers?.FirstOrDefault()?.Ports?.FirstOrDefault()?.ContainerPort ?? SessionObjects.DefaultVncPort;
            addresses[id] = (pod.Status!.PodIP, port, pod.Metadata.Name);
            if (pod.Spec?.Containers?.FirstOrDefault()?.Image is { } image)
            {
                checks.NoteImagePulled(image);
            }

            startDeadlines.TryRemove(id, out _);
            if (previous?.State != SessionState.Running)
            {
                limits[id] = (Seconds(pod, SessionObjects.IdleTimeoutAnnotation), Seconds(pod, SessionObjects.MaxDurationAnnotation), time.GetUtcNow());
                lastActivity[id] = time.GetUtcNow();
            }

            next = new ReportedSession(id, SessionState.Running, null, JsonSerializer.SerializeToElement(new { pod_ip = pod.Status.PodIP, pod = pod.Metadata.Name }));
        }
        else
        {
            next = new ReportedSession(id, state.State, state.Reason);
            if (previous is null && !state.Terminal)
            {
                // Found after an agent restart: the start timeout counts from the pod's creation.
                startDeadlines.TryAdd(id, (pod.Metadata.CreationTimestamp is { } created ? new DateTimeOffset(created, TimeSpan.Zero) : time.GetUtcNow())
                    + settings.SessionStartTimeout);
            }
        }

        if (previous is not null && previous.State == next.State && previous.FailureReason == next.FailureReason
            && (next.State != SessionState.Running || previous.PlatformMetadata?.GetRawText() == next.PlatformMetadata?.GetRawText()))
        {
            return;
        }

        if (state.Terminal)
        {
            if (state.ImagePullFailed)
            {
                NoteImagePullFailure(pod, pod.Status?.ContainerStatuses?.Select(c => c.State?.Waiting?.Message).FirstOrDefault(m => m is not null) ?? state.Reason!);
            }

            Fail(next);
            return;
        }

        known[id] = next;
        logger.LogInformation("Session {SessionId}: pod {Pod} is {State}{Reason}", id, pod.Metadata.Name, next.State.ToName(), next.FailureReason is { } r ? $" ({r})" : "");
        SessionChanged?.Invoke(next);
    }

    /// <summary>A failed session reports why, and its Deployment goes so that nothing keeps retrying for a session that is over.</summary>
    private void Fail(ReportedSession failed)
    {
        known[failed.SessionId] = failed;
        addresses.TryRemove(failed.SessionId, out _);
        startDeadlines.TryRemove(failed.SessionId, out _);
        logger.LogWarning("Session {SessionId} failed: {Reason}", failed.SessionId, failed.FailureReason);
        SessionChanged?.Invoke(failed);
        _ = DeleteDeploymentAsync(failed.SessionId, CancellationToken.None).ContinueWith(
            t => logger.LogWarning("Session {SessionId}: could not delete the failed session's Deployment: {Reason}", failed.SessionId, t.Exception?.GetBaseException().Message),
            TaskContinuationOptions.OnlyOnFaulted);
    }

    /// <summary>
    /// Once a second: fails sessions still starting at their start timeout, hibernates sessions no viewer has sent
    /// input to for their idle timeout, and stops sessions past their maximum duration — as the local platform does.
    /// </summary>
    private async Task EnforceTimeLimitsAsync()
    {
        if (Interlocked.Exchange(ref clockBusy, 1) == 1)
        {
            return;
        }

        try
        {
            var now = time.GetUtcNow();
            foreach (var (id, deadline) in startDeadlines)
            {
                if (now >= deadline && known.TryGetValue(id, out var session) && session.State == SessionState.Starting)
                {
                    var why = session.FailureReason ?? "the session did not become ready";
                    Fail(new ReportedSession(id, SessionState.Failed, $"{why} (gave up after {StreamSpace.Settings.Duration.Format(settings.SessionStartTimeout)})"));
                }
            }

            foreach (var (id, limit) in limits)
            {
                if (!known.TryGetValue(id, out var session) || session.State != SessionState.Running)
                {
                    continue;
                }

                var idle = now - lastActivity.GetOrAdd(id, now);
                if (limit.IdleTimeout is { } idleTimeout && idle > idleTimeout)
                {
                    logger.LogInformation("Session {SessionId}: no input for {Idle:0}s; hibernating it", id, idle.TotalSeconds);
                    SessionChanged?.Invoke(await HibernateAsync(id, stoppingToken));
                }
                else if (limit.MaxDuration is { } maxDuration && now - limit.RunningSince > maxDuration)
                {
                    logger.LogInformation("Session {SessionId}: reached its maximum duration; stopping it", id);
                    await DeleteDeploymentAsync(id, stoppingToken);
                    Forget(id);
                    SessionChanged?.Invoke(new ReportedSession(id, SessionState.Stopped));
                }
            }
        }
        catch (Exception e) when (e is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
        {
            logger.LogWarning("Enforcing session time limits failed: {Reason}; trying again in a second", e.Message);
        }
        catch (OperationCanceledException)
        {
            // The agent is stopping.
        }
        finally
        {
            Interlocked.Exchange(ref clockBusy, 0);
        }
    }

    private static TimeSpan? Seconds(V1Pod pod, string annotation) =>
        pod.Metadata.Annotations?.TryGetValue(annotation, out var raw) is true && int.TryParse(raw, System.Globalization.CultureInfo.InvariantCulture, out var seconds) && seconds > 0
            ? TimeSpan.FromSeconds(seconds)
            : null;

    private static ReportedSession FromDeployment(string sessionId, V1Deployment deployment) =>
        deployment.Spec?.Replicas == 0 ? new ReportedSession(sessionId, SessionState.Hibernated)
        : (deployment.Status?.ReadyReplicas ?? 0) >= 1 ? new ReportedSession(sessionId, SessionState.Running)
        : new ReportedSession(sessionId, SessionState.Starting);

    /// <summary>
    /// KUBECONFIG when set (development, tests), else the in-cluster service account, else ~/.kube/config; and whether
    /// that is the in-cluster account, i.e. whether the agent runs inside the cluster's network.
    /// </summary>
    private static (KubernetesClientConfiguration Config, bool InCluster) ClientConfiguration(IConfiguration configuration) =>
        configuration["KUBECONFIG"] is { Length: > 0 } kubeconfig ? (KubernetesClientConfiguration.BuildConfigFromConfigFile(kubeconfig), false)
        : KubernetesClientConfiguration.IsInCluster() ? (KubernetesClientConfiguration.InClusterConfig(), true)
        : (KubernetesClientConfiguration.BuildConfigFromConfigFile(), false);

    /// <summary>SESSION_NAMESPACE, else the agent's own namespace in the cluster, else the kubeconfig context's, else default.</summary>
    private static string SessionNamespace(AgentSettings settings, KubernetesClientConfiguration config) =>
        settings.SessionNamespace is { Length: > 0 } configured ? configured.Trim()
        : File.Exists(InClusterNamespaceFile) ? File.ReadAllText(InClusterNamespaceFile).Trim()
        : config.Namespace is { Length: > 0 } contextNamespace ? contextNamespace
        : "default";

    /// <summary>Runs twice: the container disposes the platform under both of its registrations.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref disposed, 1) == 1)
        {
            return;
        }

        stopping.Cancel();
        sessionClock.Dispose();
        client.Dispose();
        stopping.Dispose();
    }

}
