using System.Net;
using System.Text.Json;
using k8s;
using k8s.Autorest;
using k8s.Models;
using StreamSpace.Contracts;

namespace StreamSpace.Agent.Platforms.Kubernetes;

/// <summary>Where a running session's VNC server listens: its pod's IP and container port, and the pod's name for pods/portforward.</summary>
/// <param name="FilesPort">The file service's port; null on a pod of an agent from before the file service.</param>
public sealed record PodAddress(string PodIp, int Port, string PodName, int? FilesPort = null);

/// <summary>
/// What the cluster says about each session, kept from watches (not polling) on the session pods, the home PVCs and
/// the namespace's events: the session's state and why it waits or failed, and where a running session listens. Each
/// watch lists once and then watches from the list's resourceVersion, resuming from the last version it saw (bookmarks
/// included) when the server ends the watch, and listing again when that version is too old (410 Gone); a list
/// replaces what the watch knew, so objects deleted while it was away count as deleted.
/// </summary>
/// <remarks>
/// One lock orders every change of a session's state, whether it comes from a watch, a command or the session clock, so
/// that no decision is made on a state another thread is replacing (a start timeout firing as the pod becomes ready).
/// A session may have several pods at once (a terminating one beside its replacement); its state and address follow the
/// newest pod that is not being deleted.
/// </remarks>
public sealed class KubernetesSessionWatch(IKubernetes client, string ns, AgentSettings settings, KubernetesChecks checks, SessionClock clock, ILogger logger)
{
    private static readonly TimeSpan WatchRetryDelay = TimeSpan.FromSeconds(1);

    /// <summary>The home PVCs carry the managed-by label but not app=session.</summary>
    private const string ManagedSelector = $"{SessionObjects.ManagedByLabel}={SessionObjects.ManagedByValue}";

    private readonly Lock gate = new();

    /// <summary>The last state reported for each session this agent knows, so that heartbeats and events agree.</summary>
    private readonly Dictionary<string, ReportedSession> known = [];

    /// <summary>Where each running session's VNC server listens.</summary>
    private readonly Dictionary<string, PodAddress> addresses = [];

    /// <summary>Each session's pods by name, as last seen; more than one while a pod terminates beside its replacement.</summary>
    private readonly Dictionary<string, Dictionary<string, V1Pod>> pods = [];

    /// <summary>
    /// Sessions stopped here whose pods are still going (the garbage collector deletes them a moment after the
    /// Deployment): what those pods still report must not bring the session back.
    /// </summary>
    private readonly HashSet<string> stopped = [];

    /// <summary>The home PVCs that are Pending (not yet bound to a volume).</summary>
    private readonly HashSet<string> pendingClaims = [];

    /// <summary>The newest event about each PVC, which says why it is Pending (ProvisioningFailed, WaitForFirstConsumer, …).</summary>
    private readonly Dictionary<string, PodEvent> claimEvents = [];

    /// <summary>The newest warning about each pod (FailedScheduling, FailedMount, Failed, …), for reasons its status lacks.</summary>
    private readonly Dictionary<string, PodEvent> podEvents = [];

    private readonly TaskCompletionSource firstList = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Raised, under the lock and in order, whenever a session's reported state changes on its own.</summary>
    public event Action<ReportedSession>? SessionChanged;

    /// <summary>Completes once the first pod list has been observed, so that a restarted agent reports its sessions' real states.</summary>
    public Task FirstList => firstList.Task;

    /// <summary>Starts the three watches; they run until <paramref name="stopping"/> is cancelled.</summary>
    public void Start(CancellationToken stopping)
    {
        _ = InformAsync<V1PersistentVolumeClaim>("home volumes",
            async token => await client.CoreV1.ListNamespacedPersistentVolumeClaimAsync(ns, labelSelector: ManagedSelector, cancellationToken: token) is var list
                ? (list.Items, list.Metadata.ResourceVersion) : default,
            (version, onError, token) => client.CoreV1.WatchListNamespacedPersistentVolumeClaimAsync(ns, allowWatchBookmarks: true, labelSelector: ManagedSelector,
                resourceVersion: version, onError: onError, cancellationToken: token),
            ObserveClaim, replaceOnList: true, stopping);
        _ = InformAsync<Corev1Event>("events",
            async token => await client.CoreV1.ListNamespacedEventAsync(ns, cancellationToken: token) is var list ? (list.Items, list.Metadata.ResourceVersion) : default,
            (version, onError, token) => client.CoreV1.WatchListNamespacedEventAsync(ns, allowWatchBookmarks: true, resourceVersion: version, onError: onError,
                cancellationToken: token),
            ObserveEvent, replaceOnList: false, stopping);
        _ = InformAsync<V1Pod>("session pods",
            async token => await client.CoreV1.ListNamespacedPodAsync(ns, labelSelector: SessionObjects.Selector, cancellationToken: token) is var list
                ? (list.Items, list.Metadata.ResourceVersion) : default,
            (version, onError, token) => client.CoreV1.WatchListNamespacedPodAsync(ns, allowWatchBookmarks: true, labelSelector: SessionObjects.Selector,
                resourceVersion: version, onError: onError, cancellationToken: token),
            ObservePod, replaceOnList: true, stopping, firstList);
    }

    public ReportedSession? Reported(string sessionId)
    {
        lock (gate)
        {
            return known.GetValueOrDefault(sessionId);
        }
    }

    public IReadOnlyList<ReportedSession> AllReported()
    {
        lock (gate)
        {
            return [.. known.Values];
        }
    }

    /// <summary>Where the session's VNC server listens, only while the session is reported running.</summary>
    public PodAddress? RunningAt(string sessionId)
    {
        lock (gate)
        {
            return known.GetValueOrDefault(sessionId)?.State == SessionState.Running ? addresses.GetValueOrDefault(sessionId) : null;
        }
    }

    /// <summary>
    /// A start or wake command: the session starts, with a start deadline from now. A session already starting keeps
    /// its deadline (a repeated start); a running one stays running. Returns the state to report.
    /// </summary>
    public ReportedSession Starting(string sessionId, bool restart = false)
    {
        lock (gate)
        {
            if (!restart && known.GetValueOrDefault(sessionId)?.State is SessionState.Starting or SessionState.Running)
            {
                return known[sessionId];
            }

            known[sessionId] = new ReportedSession(sessionId, SessionState.Starting);
            stopped.Remove(sessionId);
            clock.Starting(sessionId, settings.SessionStartTimeout);
            return known[sessionId];
        }
    }

    /// <summary>A hibernate command: the session is hibernated from now on, whatever its pod still says.</summary>
    public ReportedSession Hibernated(string sessionId) => Hibernated(sessionId, onlyIfRunning: false)!;

    /// <summary>
    /// The idle timeout: marks the session hibernated if, and only if, it is running now. A stop that came first
    /// (and forgot the session) is not undone by a hibernation decided a moment before it.
    /// </summary>
    public ReportedSession? HibernatedIfRunning(string sessionId) => Hibernated(sessionId, onlyIfRunning: true);

    private ReportedSession? Hibernated(string sessionId, bool onlyIfRunning)
    {
        lock (gate)
        {
            if (onlyIfRunning && known.GetValueOrDefault(sessionId)?.State != SessionState.Running)
            {
                return null;
            }

            known[sessionId] = new ReportedSession(sessionId, SessionState.Hibernated);
            addresses.Remove(sessionId);
            clock.Forget(sessionId);
            return known[sessionId];
        }
    }

    /// <summary>The session is stopped (or its Deployment gone): the agent forgets it.</summary>
    public void Forget(string sessionId) => Forget(sessionId, onlyIfRunning: false);

    /// <summary>The maximum duration: forgets the session if, and only if, it is running now; true when it did.</summary>
    public bool ForgetIfRunning(string sessionId) => Forget(sessionId, onlyIfRunning: true);

    private bool Forget(string sessionId, bool onlyIfRunning)
    {
        lock (gate)
        {
            if (onlyIfRunning && known.GetValueOrDefault(sessionId)?.State != SessionState.Running)
            {
                return false;
            }

            known.Remove(sessionId);
            addresses.Remove(sessionId);
            clock.Forget(sessionId);
            if (pods.ContainsKey(sessionId))
            {
                stopped.Add(sessionId);
            }

            return true;
        }
    }

    /// <summary>The start timeout: fails the session if, and only if, it is still starting now.</summary>
    public void FailIfStillStarting(string sessionId)
    {
        lock (gate)
        {
            if (known.GetValueOrDefault(sessionId) is not { State: SessionState.Starting } session)
            {
                clock.Forget(sessionId);
                return;
            }

            var why = session.FailureReason ?? "the session did not become ready";
            Fail(new ReportedSession(sessionId, SessionState.Failed, $"{why} (gave up after {StreamSpace.Settings.Duration.Format(settings.SessionStartTimeout)})"));
        }
    }

    /// <summary>
    /// List, observe, then watch from the list's version; when the watch ends, watch again from the last version seen;
    /// when the server says that version is gone (410), list again. <paramref name="replaceOnList"/>: objects missing
    /// from a new list are observed as deleted.
    /// </summary>
    private async Task InformAsync<T>(string what, Func<CancellationToken, Task<(IList<T> Items, string Version)>> list,
        Func<string, Action<Exception>, CancellationToken, IAsyncEnumerable<(WatchEventType, T)>> watch, Action<WatchEventType, T> observe,
        bool replaceOnList, CancellationToken cancellationToken, TaskCompletionSource? firstListSeen = null)
        where T : IMetadata<V1ObjectMeta>
    {
        string? version = null;
        var seen = new Dictionary<string, T>();
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                if (version is null)
                {
                    var (items, listed) = await list(cancellationToken);
                    if (replaceOnList)
                    {
                        var names = items.Select(item => item.Metadata.Name).ToHashSet();
                        foreach (var (name, vanished) in seen.Where(s => !names.Contains(s.Key)).ToList())
                        {
                            seen.Remove(name);
                            observe(WatchEventType.Deleted, vanished);
                        }
                    }

                    foreach (var item in items)
                    {
                        Remember(seen, replaceOnList, WatchEventType.Added, item);
                        observe(WatchEventType.Added, item);
                    }

                    version = listed;
                    firstListSeen?.TrySetResult();
                }

                var gone = false;
                await foreach (var (type, item) in watch(version, e => gone |= Expired(what, e), cancellationToken))
                {
                    version = item.Metadata?.ResourceVersion ?? version;
                    if (type is WatchEventType.Bookmark or WatchEventType.Error)
                    {
                        continue;
                    }

                    Remember(seen, replaceOnList, type, item);
                    observe(type, item);
                }

                if (gone)
                {
                    logger.LogInformation("Watching {What} in {Namespace}: resourceVersion {Version} is too old; listing again", what, ns, version);
                    version = null;
                }

                // Else the server ended the watch, as it does after a while: resume from the last version seen.
                continue;
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.Gone)
            {
                version = null;
                continue;
            }
            catch (Exception e)
            {
                logger.LogWarning("Watching {What} in {Namespace} failed ({Reason}); watching again in {Delay}s", what, ns, e.Message, WatchRetryDelay.TotalSeconds);
            }

            try
            {
                await Task.Delay(WatchRetryDelay, clock.Time, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private static void Remember<T>(Dictionary<string, T> seen, bool replaceOnList, WatchEventType type, T item) where T : IMetadata<V1ObjectMeta>
    {
        if (!replaceOnList)
        {
            return;
        }

        if (type == WatchEventType.Deleted)
        {
            seen.Remove(item.Metadata.Name);
        }
        else
        {
            seen[item.Metadata.Name] = item;
        }
    }

    /// <summary>An error the watch reported in its stream: 410 Gone means its resourceVersion was compacted away.</summary>
    private bool Expired(string what, Exception error)
    {
        if (error is KubernetesException { Status.Code: (int)HttpStatusCode.Gone })
        {
            return true;
        }

        logger.LogWarning("Watching {What} in {Namespace}: {Reason}", what, ns, error.Message);
        return false;
    }

    private void ObservePod(WatchEventType type, V1Pod pod)
    {
        if (pod.Metadata.Labels?.TryGetValue(SessionObjects.SessionIdLabel, out var id) is not true)
        {
            return;
        }

        lock (gate)
        {
            var sessionPods = pods.TryGetValue(id, out var found) ? found : pods[id] = [];
            if (type == WatchEventType.Deleted)
            {
                sessionPods.Remove(pod.Metadata.Name);
                podEvents.Remove(pod.Metadata.Name);
                if (sessionPods.Count == 0)
                {
                    pods.Remove(id);
                    stopped.Remove(id);
                }
            }
            else
            {
                sessionPods[pod.Metadata.Name] = pod;
            }

            if (LivePod(id) is { } live)
            {
                Map(live);
            }
        }
    }

    /// <summary>The pod that serves the session: the newest that is not being deleted.</summary>
    private V1Pod? LivePod(string sessionId) =>
        pods.GetValueOrDefault(sessionId)?.Values.Where(p => p.Metadata.DeletionTimestamp is null)
            .OrderByDescending(p => p.Metadata.CreationTimestamp ?? DateTime.MinValue).ThenByDescending(p => p.Metadata.Name, StringComparer.Ordinal)
            .FirstOrDefault();

    private void ObserveClaim(WatchEventType type, V1PersistentVolumeClaim claim)
    {
        var name = claim.Metadata.Name;
        lock (gate)
        {
            if (type != WatchEventType.Deleted && claim.Status?.Phase == "Pending")
            {
                pendingClaims.Add(name);
            }
            else
            {
                pendingClaims.Remove(name);
            }

            MapAgain(pod => ClaimOf(pod) == name);
        }
    }

    private void ObserveEvent(WatchEventType type, Corev1Event change)
    {
        if (type == WatchEventType.Deleted || change.InvolvedObject?.Name is not { } name || change.Message is null)
        {
            return;
        }

        var happened = change.LastTimestamp ?? change.EventTime ?? change.Metadata.CreationTimestamp ?? DateTime.MinValue;
        var news = new PodEvent(change.Reason ?? "", change.Message.Trim(), happened);
        lock (gate)
        {
            switch (change.InvolvedObject.Kind)
            {
                case "PersistentVolumeClaim":
                    // Normal events count too: WaitForFirstConsumer and ExternalProvisioning say why a claim waits.
                    if (Newer(claimEvents, name, news))
                    {
                        MapAgain(pod => ClaimOf(pod) == name);
                    }

                    break;
                case "Pod" when change.Type == "Warning" && Newer(podEvents, name, news):
                    if (PodStates.IsImagePullFailure(news) && pods.Values.SelectMany(p => p.Values).FirstOrDefault(p => p.Metadata.Name == name) is { } failing)
                    {
                        NoteImagePullFailure(failing, news.Message);
                    }

                    MapAgain(pod => pod.Metadata.Name == name);
                    break;
            }
        }
    }

    /// <summary>Keeps the newest event per object: a list returns events in no particular order.</summary>
    private static bool Newer(Dictionary<string, PodEvent> events, string name, PodEvent news)
    {
        if (events.TryGetValue(name, out var old) && news.At < old.At)
        {
            return false;
        }

        events[name] = news;
        return true;
    }

    private void MapAgain(Func<V1Pod, bool> which)
    {
        foreach (var id in pods.Keys.ToList())
        {
            if (LivePod(id) is { } live && which(live))
            {
                Map(live);
            }
        }
    }

    private static string? ClaimOf(V1Pod pod) => pod.Spec?.Volumes?.FirstOrDefault(v => v.PersistentVolumeClaim is not null)?.PersistentVolumeClaim.ClaimName;

    /// <summary>Why the pod's home volume keeps it waiting, when its PVC is Pending.</summary>
    private string? HomeVolumePending(V1Pod pod) =>
        ClaimOf(pod) is { } claim && pendingClaims.Contains(claim)
            ? claimEvents.TryGetValue(claim, out var news) ? news.Message : $"persistentvolumeclaim {claim} is Pending"
            : null;

    private void NoteImagePullFailure(V1Pod pod, string message)
    {
        if (pod.Spec?.Containers?.FirstOrDefault()?.Image is { } image)
        {
            checks.NoteImagePullFailure(image, pod.Metadata.Annotations?.TryGetValue(SessionObjects.TemplateAnnotation, out var template) is true ? template : "?", message);
        }
    }

    /// <summary>Maps the session's live pod to the session's state, and reports the session when that changed. Under the lock.</summary>
    private void Map(V1Pod pod)
    {
        var id = pod.Metadata.Labels[SessionObjects.SessionIdLabel];
        var previous = known.GetValueOrDefault(id);
        if (previous?.State is SessionState.Hibernated or SessionState.Failed || stopped.Contains(id))
        {
            return;
        }

        var state = PodStates.Of(pod, HomeVolumePending(pod), podEvents.GetValueOrDefault(pod.Metadata.Name));
        ReportedSession next;
        if (state.State == SessionState.Running)
        {
            var ports = pod.Spec?.Containers?.FirstOrDefault()?.Ports;
            var port = ports?.FirstOrDefault()?.ContainerPort ?? SessionObjects.DefaultVncPort;
            var filesPort = ports?.FirstOrDefault(p => p.Name == SessionObjects.FilesPortName)?.ContainerPort;
            addresses[id] = new PodAddress(pod.Status!.PodIP, port, pod.Metadata.Name, filesPort);
            if (pod.Spec?.Containers?.FirstOrDefault()?.Image is { } image)
            {
                checks.NoteImagePulled(image);
            }

            if (previous?.State != SessionState.Running)
            {
                clock.Running(id, Seconds(pod, SessionObjects.IdleTimeoutAnnotation), Seconds(pod, SessionObjects.MaxDurationAnnotation));
            }

            next = new ReportedSession(id, SessionState.Running, null, JsonSerializer.SerializeToElement(new { pod_ip = pod.Status.PodIP, pod = pod.Metadata.Name }));
        }
        else
        {
            next = new ReportedSession(id, state.State, state.Reason);
            if (previous is null && !state.Terminal && !clock.IsStarting(id))
            {
                // Found after an agent restart: the start timeout counts from the pod's creation.
                clock.Starting(id, settings.SessionStartTimeout,
                    pod.Metadata.CreationTimestamp is { } created ? new DateTimeOffset(created, TimeSpan.Zero) : null);
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

    /// <summary>A failed session reports why; the platform then deletes its Deployment. Under the lock.</summary>
    private void Fail(ReportedSession failed)
    {
        known[failed.SessionId] = failed;
        addresses.Remove(failed.SessionId);
        clock.Forget(failed.SessionId);
        logger.LogWarning("Session {SessionId} failed: {Reason}", failed.SessionId, failed.FailureReason);
        SessionChanged?.Invoke(failed);
    }

    private static TimeSpan? Seconds(V1Pod pod, string annotation) =>
        pod.Metadata.Annotations?.TryGetValue(annotation, out var raw) is true && int.TryParse(raw, System.Globalization.CultureInfo.InvariantCulture, out var seconds) && seconds > 0
            ? TimeSpan.FromSeconds(seconds)
            : null;
}
