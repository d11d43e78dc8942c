using System.Collections.Concurrent;
using System.Net;
using k8s;
using k8s.Autorest;
using k8s.Models;
using StreamSpace.Contracts;

namespace StreamSpace.Agent.Platforms.Kubernetes;

/// <summary>One Kubernetes API permission the agent needs in its session namespace.</summary>
public sealed record KubernetesPermission(string Verb, string Group, string Resource, string? Subresource = null)
{
    public override string ToString() => $"{Verb} {(Group.Length == 0 ? "" : Group + "/")}{Resource}{(Subresource is null ? "" : "/" + Subresource)}";
}

/// <summary>
/// The agent's own diagnosis of its cluster, for the admin diagnostics report: whether its Role grants what it needs
/// (asked with SelfSubjectAccessReview, which every authenticated account may create), whether the home volumes' storage
/// class exists, and the last image pull failure of each session image. The API server checks run at most every few
/// minutes in the background; every heartbeat gets the cached answer.
/// </summary>
public sealed class KubernetesChecks(IKubernetes client, string sessionNamespace, AgentSettings settings, TimeProvider time, ILogger logger)
{
    public const string RbacId = "kubernetes.rbac";
    public const string StorageClassId = "kubernetes.storage_class";
    public const string ImagePullId = "kubernetes.image_pull";
    public const string DefaultStorageClassAnnotation = "storageclass.kubernetes.io/is-default-class";

    private static readonly TimeSpan RefreshInterval = TimeSpan.FromMinutes(5);
    private static readonly TimeSpan FirstCheckTimeout = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Every call the kubernetes platform makes in the session namespace. The chart's agent Role grants exactly these
    /// (its tests compare both this list and the calls the agent really makes against it).
    /// </summary>
    public static readonly IReadOnlyList<KubernetesPermission> Required =
    [
        new("get", "apps", "deployments"), new("list", "apps", "deployments"), new("create", "apps", "deployments"), new("delete", "apps", "deployments"),
        new("patch", "apps", "deployments", "scale"),
        new("list", "", "pods"), new("watch", "", "pods"),
        // The tunnel's WebSocket upgrade is a GET, authorized as get; API servers since 1.35 also require create on it.
        new("get", "", "pods", "portforward"), new("create", "", "pods", "portforward"),
        new("get", "", "secrets"), new("create", "", "secrets"),
        new("create", "", "persistentvolumeclaims"), new("list", "", "persistentvolumeclaims"), new("watch", "", "persistentvolumeclaims"),
        new("list", "", "events"), new("watch", "", "events"),
    ];

    private readonly ConcurrentDictionary<string, (string Template, string Message)> imagePullFailures = new();
    private readonly SemaphoreSlim refreshing = new(1, 1);
    private IReadOnlyList<AgentCheck>? clusterChecks;
    private DateTimeOffset clusterChecksAt;

    public void NoteImagePullFailure(string image, string template, string message) => imagePullFailures[image] = (template, message);

    /// <summary>A pod with this image became ready: whatever failed before has been fixed.</summary>
    public void NoteImagePulled(string image) => imagePullFailures.TryRemove(image, out _);

    public async Task<IReadOnlyList<AgentCheck>> CheckAsync(CancellationToken cancellationToken)
    {
        if (clusterChecks is null)
        {
            // The first report after connecting is complete, unless the API server is too slow to answer.
            await RefreshAsync(cancellationToken).WaitAsync(FirstCheckTimeout, cancellationToken).ContinueWith(_ => { }, TaskScheduler.Default);
        }
        else if (time.GetUtcNow() - clusterChecksAt > RefreshInterval)
        {
            _ = RefreshAsync(CancellationToken.None);
        }

        return [.. clusterChecks ?? [], ImagePullCheck()];
    }

    private async Task RefreshAsync(CancellationToken cancellationToken)
    {
        if (!await refreshing.WaitAsync(0, cancellationToken))
        {
            return;
        }

        try
        {
            clusterChecks = [await RbacCheckAsync(cancellationToken), await StorageClassCheckAsync(cancellationToken)];
            clusterChecksAt = time.GetUtcNow();
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            logger.LogWarning("Kubernetes checks failed: {Reason}", e.Message);
        }
        finally
        {
            refreshing.Release();
        }
    }

    private async Task<AgentCheck> RbacCheckAsync(CancellationToken cancellationToken)
    {
        const string title = "The agent's Role grants what it needs in the session namespace";
        var denied = new List<KubernetesPermission>();
        try
        {
            foreach (var permission in Required)
            {
                var review = await client.AuthorizationV1.CreateSelfSubjectAccessReviewAsync(new V1SelfSubjectAccessReview
                {
                    ApiVersion = "authorization.k8s.io/v1",
                    Kind = "SelfSubjectAccessReview",
                    Spec = new V1SelfSubjectAccessReviewSpec
                    {
                        ResourceAttributes = new V1ResourceAttributes
                        {
                            NamespaceProperty = sessionNamespace, Verb = permission.Verb, Group = permission.Group,
                            Resource = permission.Resource, Subresource = permission.Subresource,
                        },
                    },
                }, cancellationToken: cancellationToken);
                if (review.Status?.Allowed is not true)
                {
                    denied.Add(permission);
                }
            }
        }
        catch (Exception e) when (e is HttpOperationException or HttpRequestException)
        {
            return new AgentCheck(RbacId, title, AgentCheck.Warn, $"could not ask the API server (SelfSubjectAccessReview): {e.Message}");
        }

        return denied.Count == 0
            ? new AgentCheck(RbacId, title, AgentCheck.Ok, $"all {Required.Count} permissions granted in namespace {sessionNamespace}")
            : new AgentCheck(RbacId, title, AgentCheck.Fail,
                $"denied in namespace {sessionNamespace}: {string.Join(", ", denied)}",
                $"Grant them in the agent's Role (the chart's rbac.yaml makes it with rbac.create=true); check with kubectl auth can-i {denied[0].Verb} "
                + $"{denied[0].Resource}{(denied[0].Subresource is { } sub ? " --subresource=" + sub : "")} -n {sessionNamespace} --as=system:serviceaccount:<namespace>:<agent account>.");
    }

    private async Task<AgentCheck> StorageClassCheckAsync(CancellationToken cancellationToken)
    {
        const string title = "The storage class of users' home volumes exists";
        var configured = settings.SessionStorageClass.Trim();
        try
        {
            if (configured.Length > 0)
            {
                var found = await client.StorageV1.ReadStorageClassAsync(configured, cancellationToken: cancellationToken);
                return new AgentCheck(StorageClassId, title, AgentCheck.Ok, $"storage class {configured} exists (provisioner {found.Provisioner})");
            }

            var classes = await client.StorageV1.ListStorageClassAsync(cancellationToken: cancellationToken);
            var defaults = classes.Items.Where(c => c.Metadata.Annotations?.TryGetValue(DefaultStorageClassAnnotation, out var value) is true && value == "true").ToList();
            return defaults.Count > 0
                ? new AgentCheck(StorageClassId, title, AgentCheck.Ok, $"no SESSION_STORAGE_CLASS; the cluster's default is {defaults[0].Metadata.Name}")
                : new AgentCheck(StorageClassId, title, AgentCheck.Fail,
                    $"no SESSION_STORAGE_CLASS and the cluster has no default storage class (classes: {(classes.Items.Count == 0 ? "none" : string.Join(", ", classes.Items.Select(c => c.Metadata.Name)))})",
                    "Set k8sAgent.config.storageClass (SESSION_STORAGE_CLASS) to an existing class, or mark one default with the annotation " + DefaultStorageClassAnnotation + "=true; until then home volumes stay Pending.");
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
        {
            return new AgentCheck(StorageClassId, title, AgentCheck.Fail, $"storage class {configured} (SESSION_STORAGE_CLASS) does not exist",
                "Set k8sAgent.config.storageClass to a class listed by kubectl get storageclass, or create it; until then home volumes stay Pending.");
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.Forbidden)
        {
            return new AgentCheck(StorageClassId, title, AgentCheck.Warn, $"the agent may not read storage classes: {e.Response.ReasonPhrase}",
                "Storage classes are cluster-scoped: the chart's ClusterRole grants the agent get (or list, without a configured class) on them; install it with rbac.create=true.");
        }
        catch (Exception e) when (e is HttpOperationException or HttpRequestException)
        {
            return new AgentCheck(StorageClassId, title, AgentCheck.Warn, $"could not read storage classes: {e.Message}");
        }
    }

    private AgentCheck ImagePullCheck()
    {
        const string title = "Session images pull";
        var failures = imagePullFailures.OrderBy(f => f.Key, StringComparer.Ordinal).ToList();
        return failures.Count == 0
            ? new AgentCheck(ImagePullId, title, AgentCheck.Ok, "no image pull failure since the agent started")
            : new AgentCheck(ImagePullId, title, AgentCheck.Warn,
                string.Join("; ", failures.Select(f => $"{f.Key} (template {f.Value.Template}): {f.Value.Message}")),
                $"Check the template's image name and tag, and that SESSION_IMAGE_PULL_SECRETS names a Secret in {sessionNamespace} that may pull from its registry.");
    }
}
