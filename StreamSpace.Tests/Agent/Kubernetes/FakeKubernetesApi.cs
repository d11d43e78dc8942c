using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace StreamSpace.Tests.Agent.Kubernetes;

/// <summary>One request the agent made: the (verb, apiGroup, resource) RBAC checks, with subresources as "deployments/scale".</summary>
public sealed record KubernetesCall(string Verb, string ApiGroup, string Resource);

/// <summary>
/// An in-process Kubernetes API server on loopback that speaks the real REST protocol over HTTP and JSON, implementing
/// only what the agent uses: apps/v1 deployments (and their scale subresource) and replicasets, and core/v1 pods,
/// services, secrets, persistentvolumeclaims and events, namespaced; cluster-scoped storage.k8s.io/v1 storageclasses;
/// get, list, create, replace (PUT), patch, delete; label selectors; watch=true streams; resourceVersion; Status bodies
/// for 404 NotFound, 409 AlreadyExists/Conflict and 422 Invalid; authorization.k8s.io/v1 selfsubjectaccessreviews
/// (answered from <see cref="Denied"/>); and pods/portforward as a real WebSocket (v4.channel.k8s.io) to the simulated pod's address.
///
/// Behaviours of a real cluster the agent depends on, and which this fake has:
/// - Controllers: a Deployment owns a ReplicaSet (named &lt;deployment&gt;-&lt;hash of its pod template&gt;, with that hash as
///   the pod-template-hash label), which owns the pods (&lt;replicaset&gt;-&lt;5 characters&gt;). A ReplicaSet counts only pods
///   that are not being deleted, so scaling down and up, or deleting (evicting) a pod, leaves the old pod Terminating
///   beside its replacement. readyReplicas follows the pods' Ready conditions. Tests play the kubelet with <see cref="FakeKubelet"/>.
/// - Graceful deletion: deleting a pod sets metadata.deletionTimestamp (a MODIFIED event) and removes it (DELETED) after
///   its grace period: gracePeriodSeconds of the request, else spec.terminationGracePeriodSeconds, else <see cref="PodGracePeriod"/>.
///   An object with metadata.finalizers stays, being deleted, until they are removed. Other objects go at once.
/// - Garbage collection: after an object is deleted, the objects whose ownerReferences name its uid are deleted (each
///   by the rules above) after <see cref="CollectionDelay"/>, as the garbage collector does in the background.
/// - Watches end after <see cref="WatchTimeout"/> (or the request's timeoutSeconds). A watch from a resourceVersion older
///   than the retained history gets a 410 Gone: an ERROR event whose object is a Status with code 410, then the stream
///   ends. With allowWatchBookmarks=true a watch sends a BOOKMARK with the current resourceVersion every <see cref="BookmarkInterval"/>.
///   <see cref="Partition"/> and <see cref="HealAndCompact"/> let a test cut watches off and compact the history meanwhile.
/// - PersistentVolumeClaims follow their storage class's volumeBindingMode (the named class, else the default one):
///   Immediate binds at once; WaitForFirstConsumer stays Pending (with a WaitForFirstConsumer event) until a pod that
///   uses the claim exists; a missing class leaves the claim Pending with a ProvisioningFailed event.
///
/// Where it is still simpler than a real API server:
/// - Objects are untyped JSON; nothing is validated beyond metadata.name (a DNS-1123 name, else 422), and no defaults are set.
/// - Every PATCH (merge, strategic merge, apply) is applied as a JSON merge patch (RFC 7386): strategic merge's list
///   merging by key is not done. The agent only sends merge patches.
/// - One resourceVersion counter for everything; a watch without one starts with ADDED for every current object.
/// - A Deployment's strategy is ignored: a changed template scales the old ReplicaSets to 0 and the new one up at once
///   (Recreate would wait for the old pods to go first). Every propagationPolicy collects dependents in the background.
/// - There is no scheduler: a pod counts as scheduled (and binds a WaitForFirstConsumer claim) once it exists.
/// - No authentication or authorization: every request is recorded instead, for comparison with the chart's Role;
///   <see cref="Denied"/> changes only what SelfSubjectAccessReview answers.
/// - Field selectors are not implemented (the agent sends none).
/// </summary>
public sealed class FakeKubernetesApi : IAsyncDisposable
{
    private static readonly Dictionary<string, (string Group, string Version, string Kind)> Resources = new()
    {
        ["deployments"] = ("apps", "apps/v1", "Deployment"),
        ["replicasets"] = ("apps", "apps/v1", "ReplicaSet"),
        ["pods"] = ("", "v1", "Pod"),
        ["services"] = ("", "v1", "Service"),
        ["secrets"] = ("", "v1", "Secret"),
        ["persistentvolumeclaims"] = ("", "v1", "PersistentVolumeClaim"),
        ["events"] = ("", "v1", "Event"),
        ["storageclasses"] = ("storage.k8s.io", "storage.k8s.io/v1", "StorageClass"),
        ["selfsubjectaccessreviews"] = ("authorization.k8s.io", "authorization.k8s.io/v1", "SelfSubjectAccessReview"),
    };

    private static readonly HashSet<string> ClusterScoped = ["storageclasses", "selfsubjectaccessreviews"];

    /// <summary>The subprotocol of pods/portforward over WebSocket: channel-prefixed binary messages.</summary>
    private const string PortForwardProtocol = "v4.channel.k8s.io";

    private readonly object gate = new();
    private readonly Dictionary<(string Resource, string Namespace, string Name), JsonObject> objects = [];
    private readonly List<(long Version, string Type, string Resource, string Namespace, JsonObject Object)> history = [];
    private readonly List<Watcher> watchers = [];
    private readonly ConcurrentQueue<KubernetesCall> calls = new();
    private readonly CancellationTokenSource stopped = new();
    private readonly WebApplication app;
    private readonly string directory;
    private long resourceVersion = 1000;

    /// <summary>The newest resourceVersion no longer in the history: a watch from it or before gets 410 Gone.</summary>
    private long compactedThrough = 1000;

    /// <summary>Set while watches are cut off (<see cref="Partition"/>): new watches wait for it.</summary>
    private TaskCompletionSource? partition;

    private FakeKubernetesApi(WebApplication app, string directory)
    {
        this.app = app;
        this.directory = directory;
    }

    public Uri Url { get; private set; } = null!;

    /// <summary>A kubeconfig naming this server, as the agent's KUBECONFIG.</summary>
    public string KubeconfigPath => Path.Combine(directory, "kubeconfig");

    public IReadOnlyCollection<KubernetesCall> Calls => calls;

    /// <summary>How long a pod without terminationGracePeriodSeconds terminates (a real cluster's default is 30 s).</summary>
    public TimeSpan PodGracePeriod { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>How long after an owner's deletion the garbage collector deletes what it owned.</summary>
    public TimeSpan CollectionDelay { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>How long a watch stream lasts before the server ends it (a real server: minutes).</summary>
    public TimeSpan WatchTimeout { get; set; } = TimeSpan.FromSeconds(5);

    public TimeSpan BookmarkInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>How many watches were answered 410 Gone.</summary>
    public int ExpiredWatches => expiredWatches;

    private int expiredWatches;

    public static async Task<FakeKubernetesApi> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        var app = builder.Build();
        var fake = new FakeKubernetesApi(app, Directory.CreateTempSubdirectory("streamspace-fake-k8s-").FullName);
        app.UseWebSockets();
        app.Map("/{**path}", fake.HandleAsync);
        await app.StartAsync();
        fake.Url = new Uri(app.Urls.First());
        await File.WriteAllTextAsync(fake.KubeconfigPath, $"""
            apiVersion: v1
            kind: Config
            clusters:
            - name: fake
              cluster:
                server: {fake.Url.ToString().TrimEnd('/')}
            contexts:
            - name: fake
              context:
                cluster: fake
                user: fake
            current-context: fake
            users:
            - name: fake
              user:
                token: fake-token
            """);
        return fake;
    }

    // ---- The store, for tests and the simulated kubelet ----

    public JsonObject? Get(string resource, string ns, string name)
    {
        lock (gate)
        {
            return objects.TryGetValue((resource, ns, name), out var found) ? (JsonObject)found.DeepClone() : null;
        }
    }

    public List<JsonObject> List(string resource, string ns, string? labelSelector = null)
    {
        lock (gate)
        {
            return [.. objects.Where(o => o.Key.Resource == resource && o.Key.Namespace == ns && Matches(o.Value, labelSelector))
                .Select(o => (JsonObject)o.Value.DeepClone())];
        }
    }

    /// <summary>Changes an object as a controller would (no request is recorded); returns false when it does not exist.</summary>
    public bool Update(string resource, string ns, string name, Action<JsonObject> change)
    {
        lock (gate)
        {
            if (!objects.TryGetValue((resource, ns, name), out var current))
            {
                return false;
            }

            var next = (JsonObject)current.DeepClone();
            change(next);
            StoreOrFinishDeletion(resource, ns, name, next);
            return true;
        }
    }

    /// <summary>
    /// Deletes an object as an operator with kubectl (or an eviction) would, with its grace period and the garbage
    /// collection of what it owns; no agent request is recorded.
    /// </summary>
    public bool Remove(string resource, string ns, string name, TimeSpan? gracePeriod = null)
    {
        lock (gate)
        {
            var existed = objects.ContainsKey((resource, ns, name));
            Delete(resource, ns, name, gracePeriod);
            return existed;
        }
    }

    /// <summary>Stores an object as an operator or a controller would (an Event, a StorageClass, a Deployment); no request is recorded.</summary>
    public void Put(string resource, string ns, JsonObject value)
    {
        var kind = Resources[resource];
        value["apiVersion"] = kind.Version;
        value["kind"] = kind.Kind;
        var metadata = value["metadata"]!.AsObject();
        metadata["namespace"] = ns.Length == 0 ? null : ns;
        metadata["uid"] ??= Guid.NewGuid().ToString();
        metadata["creationTimestamp"] ??= DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ");
        lock (gate)
        {
            var name = metadata["name"]!.GetValue<string>();
            Store(resource, ns, name, value, objects.ContainsKey((resource, ns, name)) ? "MODIFIED" : "ADDED");
        }
    }

    /// <summary>
    /// The permissions SelfSubjectAccessReview denies, as "verb group/resource[/subresource]" with the core group as "":
    /// e.g. "create /pods/portforward". Everything else is allowed. Requests themselves are never refused.
    /// </summary>
    public ConcurrentDictionary<string, bool> Denied { get; } = new();

    public static string Permission(string verb, string group, string resource, string? subresource = null) =>
        $"{verb} {group}/{resource}{(string.IsNullOrEmpty(subresource) ? "" : "/" + subresource)}";

    // ---- HTTP ----

    private async Task HandleAsync(HttpContext context)
    {
        var segments = context.Request.Path.Value!.Trim('/').Split('/');
        // Namespaced: /api/v1/namespaces/{ns}/{resource}[/{name}[/{sub}]] and /apis/{group}/v1/namespaces/{ns}/{resource}[/{name}[/{sub}]];
        // cluster-scoped: /apis/{group}/v1/{resource}[/{name}], with "" as the namespace in the store.
        var (group, rest) = segments switch
        {
            ["api", "v1", "namespaces", .. var tail] => ("", tail),
            ["apis", var g, "v1", "namespaces", .. var tail] => (g, tail),
            ["apis", var g, "v1", .. var tail] when tail is [var r, ..] && ClusterScoped.Contains(r) => (g, ["", .. tail]),
            _ => ("", null),
        };
        if (rest is not { Length: >= 2 and <= 4 } || !Resources.TryGetValue(rest[1], out var kind) || kind.Group != group
            || ClusterScoped.Contains(rest[1]) != (rest[0] == ""))
        {
            await WriteStatusAsync(context, 404, "NotFound", $"the server could not find the requested resource ({context.Request.Path})");
            return;
        }

        var (ns, resource, name, sub) = (rest[0], rest[1], rest.ElementAtOrDefault(2), rest.ElementAtOrDefault(3));
        if ((resource, sub) == ("pods", "portforward"))
        {
            await PortForwardAsync(context, ns, name!);
            return;
        }

        var watch = context.Request.Query["watch"] is { Count: > 0 } w && w[0] is "true" or "1";
        var verb = (context.Request.Method, name) switch
        {
            ("GET", null) => watch ? "watch" : "list",
            ("GET", _) => "get",
            ("POST", null) => "create",
            ("PUT", _) => "update",
            ("PATCH", _) => "patch",
            ("DELETE", null) => "deletecollection",
            ("DELETE", _) => "delete",
            _ => "unknown",
        };
        calls.Enqueue(new KubernetesCall(verb, kind.Group, sub is null ? resource : $"{resource}/{sub}"));

        if (sub is not null && (resource, sub) != ("deployments", "scale"))
        {
            await WriteStatusAsync(context, 404, "NotFound", $"subresource {sub} of {resource} is not implemented by the fake");
            return;
        }

        var body = context.Request.ContentLength is > 0 || context.Request.Headers.TransferEncoding.Count > 0
            ? await JsonNode.ParseAsync(context.Request.Body) as JsonObject
            : null;
        var selector = context.Request.Query["labelSelector"].FirstOrDefault();
        if ((resource, verb) == ("selfsubjectaccessreviews", "create") && body is not null)
        {
            await WriteJsonAsync(context, 201, Review(body));
            return;
        }

        switch (verb)
        {
            case "watch":
                var query = context.Request.Query;
                await WatchAsync(context, resource, ns, selector, query["resourceVersion"].FirstOrDefault(), query["allowWatchBookmarks"].FirstOrDefault() == "true",
                    int.TryParse(query["timeoutSeconds"].FirstOrDefault(), out var seconds) && seconds > 0 ? TimeSpan.FromSeconds(seconds) : WatchTimeout);
                return;
            case "list":
                await WriteListAsync(context, resource, ns, selector, kind);
                return;
        }

        int status;
        JsonObject response;
        lock (gate)
        {
            var grace = int.TryParse(context.Request.Query["gracePeriodSeconds"].FirstOrDefault(), out var graceSeconds) ? TimeSpan.FromSeconds(graceSeconds)
                : body?["gracePeriodSeconds"]?.GetValue<int>() is { } bodyGrace ? TimeSpan.FromSeconds(bodyGrace) : (TimeSpan?)null;
            (status, response) = sub is "scale" ? Scale(verb, ns, name!, body) : Act(verb, resource, ns, name, body, kind, grace);
        }

        await WriteJsonAsync(context, status, response);
    }

    /// <summary>Answers a SelfSubjectAccessReview from <see cref="Denied"/>, echoing its spec as the real server does.</summary>
    private JsonObject Review(JsonObject review)
    {
        var attributes = review["spec"]?["resourceAttributes"];
        string? Attribute(string name) => attributes?[name]?.GetValue<string>();
        var denied = attributes is null
            || Denied.ContainsKey(Permission(Attribute("verb") ?? "", Attribute("group") ?? "", Attribute("resource") ?? "", Attribute("subresource")));
        review["status"] = new JsonObject { ["allowed"] = !denied, ["reason"] = denied ? "denied by the fake's Denied set" : "allowed by the fake" };
        review["metadata"] ??= new JsonObject();
        return review;
    }

    /// <summary>
    /// pods/portforward over WebSocket, as the kubelet behind the API server speaks it: subprotocol v4.channel.k8s.io; per
    /// requested port a data channel (2i) and an error channel (2i+1), each of whose first message is the port in two
    /// little-endian bytes. It connects to the port at the pod's IP (the simulated pod's loopback address); when that fails,
    /// it writes the error on the error channel and closes. One port per request, which is all the agent asks for.
    /// The request is recorded as both get and create on pods/portforward: the upgrade is a GET, which RBAC authorizes as
    /// get, and API servers since 1.35 (AuthorizePodWebsocketUpgradeCreatePermission) also require create.
    /// </summary>
    private async Task PortForwardAsync(HttpContext context, string ns, string name)
    {
        calls.Enqueue(new KubernetesCall("get", "", "pods/portforward"));
        calls.Enqueue(new KubernetesCall("create", "", "pods/portforward"));
        var pod = Get("pods", ns, name);
        if (pod is null)
        {
            await WriteStatusAsync(context, 404, "NotFound", $"pods \"{name}\" not found");
            return;
        }

        if (!context.WebSockets.IsWebSocketRequest || !context.WebSockets.WebSocketRequestedProtocols.Contains(PortForwardProtocol)
            || !ushort.TryParse(context.Request.Query["ports"].FirstOrDefault(), out var port))
        {
            await WriteStatusAsync(context, 400, "BadRequest", $"the fake serves portforward only as a WebSocket with subprotocol {PortForwardProtocol} and one ports= value");
            return;
        }

        using var socket = await context.WebSockets.AcceptWebSocketAsync(PortForwardProtocol);
        var header = new byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(header, port);
        await socket.SendAsync(new byte[] { 0, header[0], header[1] }, WebSocketMessageType.Binary, true, context.RequestAborted);
        await socket.SendAsync(new byte[] { 1, header[0], header[1] }, WebSocketMessageType.Binary, true, context.RequestAborted);

        var podIp = pod["status"]?["podIP"]?.GetValue<string>();
        using var tcp = new TcpClient();
        try
        {
            await tcp.ConnectAsync(podIp ?? throw new SocketException((int)SocketError.HostUnreachable), port, context.RequestAborted);
        }
        catch (SocketException e)
        {
            var error = Encoding.UTF8.GetBytes($"error forwarding port {port} to pod {name}: dial tcp {podIp ?? "(no pod IP)"}:{port}: {e.Message}");
            await socket.SendAsync((byte[])[1, .. error], WebSocketMessageType.Binary, true, context.RequestAborted);
            await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, null, context.RequestAborted);
            return;
        }

        var server = tcp.GetStream();
        using var done = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted);
        var toPod = Task.Run(async () =>
        {
            var buffer = new byte[64 * 1024];
            var channel = -1;
            while (true)
            {
                var result = await socket.ReceiveAsync(buffer, done.Token);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    return;
                }

                // Every client message starts with its channel, and a receive may return part of a message: the byte
                // is read at a message's start only. Only the data channel carries bytes for the pod.
                var offset = 0;
                if (channel < 0 && result.Count > 0)
                {
                    channel = buffer[0];
                    offset = 1;
                }

                if (channel == 0 && result.Count > offset)
                {
                    await server.WriteAsync(buffer.AsMemory(offset, result.Count - offset), done.Token);
                }

                if (result.EndOfMessage)
                {
                    channel = -1;
                }
            }
        });
        var fromPod = Task.Run(async () =>
        {
            var buffer = new byte[64 * 1024];
            int read;
            while ((read = await server.ReadAsync(buffer.AsMemory(1), done.Token)) > 0)
            {
                buffer[0] = 0;
                await socket.SendAsync(buffer.AsMemory(0, read + 1), WebSocketMessageType.Binary, true, done.Token);
            }
        });
        if (await Task.WhenAny(toPod, fromPod) == fromPod && socket.State == WebSocketState.Open)
        {
            // The pod closed its end: the API server closes the WebSocket cleanly, after everything the pod sent, and
            // waits (a while) for the client's close, as a real one does rather than cutting the connection.
            await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None).ContinueWith(_ => { }, TaskScheduler.Default);
            await toPod.WaitAsync(TimeSpan.FromSeconds(5)).ContinueWith(_ => { }, TaskScheduler.Default);
        }

        await done.CancelAsync();
        await Task.WhenAll(toPod, fromPod).ContinueWith(_ => { }, TaskScheduler.Default);
        if (socket.State == WebSocketState.Open)
        {
            await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None).ContinueWith(_ => { }, TaskScheduler.Default);
        }
    }

    private (int, JsonObject) Act(string verb, string resource, string ns, string? name, JsonObject? body, (string Group, string Version, string Kind) kind, TimeSpan? grace)
    {
        var key = (resource, ns, name ?? body?["metadata"]?["name"]?.GetValue<string>() ?? "");
        objects.TryGetValue(key, out var existing);
        switch (verb)
        {
            case "get":
                return existing is null ? NotFound(kind.Kind, key.Item3) : (200, existing);
            case "create":
                if (body is null || !IsDnsName(key.Item3))
                {
                    return Status(422, "Invalid", $"{kind.Kind} \"{key.Item3}\" is invalid: metadata.name: a lowercase RFC 1123 name is required");
                }

                if (existing is not null)
                {
                    return Status(409, "AlreadyExists", $"{resource} \"{key.Item3}\" already exists", kind.Kind, key.Item3);
                }

                var metadata = body["metadata"]!.AsObject();
                metadata["namespace"] = ns;
                metadata["uid"] = Guid.NewGuid().ToString();
                metadata["creationTimestamp"] = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ");
                metadata["generation"] = 1;
                body["apiVersion"] = kind.Version;
                body["kind"] = kind.Kind;
                var created = Stored(resource, ns, key.Item3, body, "ADDED");
                if (resource == "persistentvolumeclaims")
                {
                    BindOrWait(ns, key.Item3);
                    created = (JsonObject)objects[key].DeepClone();
                }

                return (201, created);
            case "update":
                if (existing is null)
                {
                    return NotFound(kind.Kind, key.Item3);
                }

                if (body?["metadata"]?["resourceVersion"]?.GetValue<string>() is { } expected && expected != Version(existing))
                {
                    return Status(409, "Conflict", $"Operation cannot be fulfilled on {resource} \"{key.Item3}\": the object has been modified; please apply your changes to the latest version and try again", kind.Kind, key.Item3);
                }

                body!["metadata"]!["uid"] = existing["metadata"]!["uid"]!.DeepClone();
                body["metadata"]!["creationTimestamp"] = existing["metadata"]!["creationTimestamp"]!.DeepClone();
                body["metadata"]!["deletionTimestamp"] = existing["metadata"]!["deletionTimestamp"]?.DeepClone();
                body["metadata"]!["deletionGracePeriodSeconds"] = existing["metadata"]!["deletionGracePeriodSeconds"]?.DeepClone();
                StoreOrFinishDeletion(resource, ns, key.Item3, body);
                return (200, (JsonObject)body.DeepClone());
            case "patch":
                if (existing is null)
                {
                    return NotFound(kind.Kind, key.Item3);
                }

                var patched = (JsonObject)MergePatch(existing.DeepClone(), body)!;
                StoreOrFinishDeletion(resource, ns, key.Item3, patched);
                return (200, (JsonObject)patched.DeepClone());
            case "delete":
                if (existing is null)
                {
                    return NotFound(kind.Kind, key.Item3);
                }

                if (Delete(resource, ns, key.Item3, grace) is { } terminating)
                {
                    // Deletion is under way (grace period or finalizers): the object, with its deletionTimestamp.
                    return (200, terminating);
                }

                return (200, new JsonObject
                {
                    ["kind"] = "Status", ["apiVersion"] = "v1", ["metadata"] = new JsonObject(), ["status"] = "Success",
                    ["details"] = new JsonObject { ["name"] = key.Item3, ["kind"] = resource, ["uid"] = existing["metadata"]!["uid"]!.DeepClone() },
                });
            default:
                return Status(405, "MethodNotAllowed", $"{verb} is not implemented by the fake");
        }
    }

    /// <summary>The autoscaling/v1 Scale view of a Deployment; writing it sets the Deployment's replicas.</summary>
    private (int, JsonObject) Scale(string verb, string ns, string name, JsonObject? body)
    {
        if (!objects.TryGetValue(("deployments", ns, name), out var deployment))
        {
            return NotFound("Deployment", name);
        }

        var scale = ScaleOf(deployment);
        switch (verb)
        {
            case "get":
                return (200, scale);
            case "update" or "patch":
                var next = verb == "update" ? body! : (JsonObject)MergePatch(scale.DeepClone(), body)!;
                var replicas = next["spec"]?["replicas"]?.GetValue<int>() ?? 1;
                var changed = (JsonObject)deployment.DeepClone();
                changed["spec"]!["replicas"] = replicas;
                return (200, ScaleOf(Stored("deployments", ns, name, changed, "MODIFIED")));
            default:
                return Status(405, "MethodNotAllowed", $"{verb} of deployments/scale is not implemented by the fake");
        }
    }

    private static JsonObject ScaleOf(JsonObject deployment) => new()
    {
        ["kind"] = "Scale",
        ["apiVersion"] = "autoscaling/v1",
        ["metadata"] = new JsonObject
        {
            ["name"] = deployment["metadata"]!["name"]!.DeepClone(), ["namespace"] = deployment["metadata"]!["namespace"]!.DeepClone(),
            ["uid"] = deployment["metadata"]!["uid"]!.DeepClone(), ["resourceVersion"] = Version(deployment),
        },
        ["spec"] = new JsonObject { ["replicas"] = deployment["spec"]?["replicas"]?.GetValue<int>() ?? 1 },
        ["status"] = new JsonObject { ["replicas"] = deployment["status"]?["replicas"]?.GetValue<int>() ?? 0 },
    };

    private JsonObject Stored(string resource, string ns, string name, JsonObject value, string type)
    {
        Store(resource, ns, name, value, type);
        return (JsonObject)value.DeepClone();
    }

    /// <summary>Every change goes through here: a new resourceVersion, the history, the watchers, and the controllers.</summary>
    private void Store(string resource, string ns, string name, JsonObject value, string type)
    {
        value["metadata"]!["resourceVersion"] = (++resourceVersion).ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (type == "DELETED")
        {
            objects.Remove((resource, ns, name));
        }
        else
        {
            objects[(resource, ns, name)] = value;
        }

        var snapshot = (JsonObject)value.DeepClone();
        history.Add((resourceVersion, type, resource, ns, snapshot));
        foreach (var watcher in watchers.Where(w => w.Resource == resource && w.Namespace == ns && Matches(snapshot, w.Selector)))
        {
            watcher.Events.Writer.TryWrite(Event(type, snapshot));
        }

        var live = type != "DELETED" && value["metadata"]?["deletionTimestamp"] is null;
        switch (resource)
        {
            case "deployments" when live:
                ReconcileDeployment(ns, value);
                break;
            case "replicasets" when live:
                ReconcileReplicaSet(ns, value);
                break;
            case "pods":
                if (Owner(snapshot, "ReplicaSet") is { } replicaSet && objects.TryGetValue(("replicasets", ns, replicaSet), out var owner))
                {
                    ReconcileReplicaSet(ns, owner);
                    if (Owner(owner, "Deployment") is { } deployment)
                    {
                        UpdateReadyReplicas(ns, deployment);
                    }
                }

                if (type == "ADDED")
                {
                    BindClaimsOf(ns, snapshot);
                }

                break;
        }
    }

    /// <summary>An update of an object being deleted that removes its last finalizer finishes its deletion.</summary>
    private void StoreOrFinishDeletion(string resource, string ns, string name, JsonObject value)
    {
        var finished = value["metadata"]?["deletionTimestamp"] is not null && value["metadata"]?["finalizers"] is not JsonArray { Count: > 0 }
            && (resource != "pods" || value["metadata"]?["deletionGracePeriodSeconds"] is null);
        Store(resource, ns, name, value, "MODIFIED");
        if (finished)
        {
            Deleted(resource, ns, name);
        }
    }

    private static string? Owner(JsonObject value, string kind) =>
        value["metadata"]?["ownerReferences"]?.AsArray().FirstOrDefault(r => r?["kind"]?.GetValue<string>() == kind)?["name"]?.GetValue<string>();

    private IEnumerable<(string Name, JsonObject Value)> Owned(string resource, string ns, JsonObject owner)
    {
        var uid = owner["metadata"]!["uid"]!.GetValue<string>();
        return objects.Where(o => o.Key.Resource == resource && o.Key.Namespace == ns && OwnedBy(o.Value, uid)).Select(o => (o.Key.Name, o.Value)).ToList();
    }

    /// <summary>The deployment controller: the ReplicaSet of the current pod template gets the Deployment's replicas, older ones none.</summary>
    private void ReconcileDeployment(string ns, JsonObject deployment)
    {
        var name = deployment["metadata"]!["name"]!.GetValue<string>();
        var template = (JsonObject)deployment["spec"]!["template"]!.DeepClone();
        var hash = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes(template.ToJsonString())))[..10];
        var replicas = deployment["spec"]?["replicas"]?.GetValue<int>() ?? 1;
        var owned = Owned("replicasets", ns, deployment);
        foreach (var (oldName, old) in owned.Where(o => o.Name != $"{name}-{hash}" && o.Value["spec"]?["replicas"]?.GetValue<int>() != 0))
        {
            var scaled = (JsonObject)old.DeepClone();
            scaled["spec"]!["replicas"] = 0;
            Store("replicasets", ns, oldName, scaled, "MODIFIED");
        }

        if (owned.FirstOrDefault(o => o.Name == $"{name}-{hash}").Value is { } current)
        {
            if (current["spec"]?["replicas"]?.GetValue<int>() != replicas)
            {
                var scaled = (JsonObject)current.DeepClone();
                scaled["spec"]!["replicas"] = replicas;
                Store("replicasets", ns, $"{name}-{hash}", scaled, "MODIFIED");
            }

            return;
        }

        template["metadata"] ??= new JsonObject();
        template["metadata"]!["labels"] ??= new JsonObject();
        template["metadata"]!["labels"]!["pod-template-hash"] = hash;
        Store("replicasets", ns, $"{name}-{hash}", new JsonObject
        {
            ["apiVersion"] = "apps/v1",
            ["kind"] = "ReplicaSet",
            ["metadata"] = new JsonObject
            {
                ["name"] = $"{name}-{hash}", ["namespace"] = ns, ["uid"] = Guid.NewGuid().ToString(), ["creationTimestamp"] = Now(),
                ["labels"] = template["metadata"]!["labels"]!.DeepClone(),
                ["ownerReferences"] = new JsonArray(OwnerReference(deployment)),
            },
            ["spec"] = new JsonObject { ["replicas"] = replicas, ["template"] = template },
        }, "ADDED");
    }

    /// <summary>The replica set controller: as many pods not being deleted as its replicas; a pod being deleted is replaced at once.</summary>
    private void ReconcileReplicaSet(string ns, JsonObject replicaSet)
    {
        if (replicaSet["metadata"]?["deletionTimestamp"] is not null)
        {
            return;
        }

        var name = replicaSet["metadata"]!["name"]!.GetValue<string>();
        var replicas = replicaSet["spec"]?["replicas"]?.GetValue<int>() ?? 1;
        List<(string Name, JsonObject Value)> Live() => [.. Owned("pods", ns, replicaSet).Where(p => p.Value["metadata"]?["deletionTimestamp"] is null)];
        while (Live().Count < replicas)
        {
            var template = replicaSet["spec"]!["template"]!;
            var podName = $"{name}-{Guid.NewGuid().ToString("N")[..5]}";
            Store("pods", ns, podName, new JsonObject
            {
                ["apiVersion"] = "v1",
                ["kind"] = "Pod",
                ["metadata"] = new JsonObject
                {
                    ["name"] = podName, ["namespace"] = ns, ["uid"] = Guid.NewGuid().ToString(), ["creationTimestamp"] = Now(),
                    ["labels"] = template["metadata"]?["labels"]?.DeepClone(),
                    ["annotations"] = template["metadata"]?["annotations"]?.DeepClone(),
                    ["ownerReferences"] = new JsonArray(OwnerReference(replicaSet)),
                },
                ["spec"] = template["spec"]?.DeepClone(),
                ["status"] = new JsonObject { ["phase"] = "Pending" },
            }, "ADDED");
        }

        foreach (var (pod, _) in Live().Skip(replicas))
        {
            Delete("pods", ns, pod, gracePeriod: null);
        }
    }

    private static JsonObject OwnerReference(JsonObject owner) => new()
    {
        ["apiVersion"] = owner["apiVersion"]!.DeepClone(), ["kind"] = owner["kind"]!.DeepClone(),
        ["name"] = owner["metadata"]!["name"]!.DeepClone(), ["uid"] = owner["metadata"]!["uid"]!.DeepClone(), ["controller"] = true,
    };

    private void UpdateReadyReplicas(string ns, string deploymentName)
    {
        if (!objects.TryGetValue(("deployments", ns, deploymentName), out var deployment))
        {
            return;
        }

        var pods = Owned("replicasets", ns, deployment).SelectMany(rs => Owned("pods", ns, rs.Value)).Select(p => p.Value)
            .Where(p => p["metadata"]?["deletionTimestamp"] is null).ToList();
        var ready = pods.Count(p => p["status"]?["conditions"]?.AsArray().Any(c => c?["type"]?.GetValue<string>() == "Ready" && c["status"]?.GetValue<string>() == "True") is true);
        var status = new JsonObject { ["replicas"] = pods.Count, ["readyReplicas"] = ready, ["availableReplicas"] = ready };
        if (deployment["status"]?.ToJsonString() != status.ToJsonString())
        {
            var changed = (JsonObject)deployment.DeepClone();
            changed["status"] = status;
            Store("deployments", ns, deploymentName, changed, "MODIFIED");
        }
    }

    /// <summary>
    /// Starts deleting an object: a pod terminates for its grace period, an object with finalizers waits for them, anything
    /// else goes at once. Returns the object while its deletion is under way, or null once it is gone.
    /// </summary>
    private JsonObject? Delete(string resource, string ns, string name, TimeSpan? gracePeriod)
    {
        if (!objects.TryGetValue((resource, ns, name), out var existing))
        {
            return null;
        }

        if (existing["metadata"]?["deletionTimestamp"] is not null)
        {
            return (JsonObject)existing.DeepClone();
        }

        var grace = resource == "pods"
            ? gracePeriod ?? (existing["spec"]?["terminationGracePeriodSeconds"]?.GetValue<int>() is { } seconds ? TimeSpan.FromSeconds(seconds) : PodGracePeriod)
            : TimeSpan.Zero;
        var finalizers = existing["metadata"]?["finalizers"] is JsonArray { Count: > 0 };
        if (grace <= TimeSpan.Zero && !finalizers)
        {
            Deleted(resource, ns, name);
            return null;
        }

        var terminating = (JsonObject)existing.DeepClone();
        terminating["metadata"]!["deletionTimestamp"] = DateTime.UtcNow.Add(grace).ToString("yyyy-MM-ddTHH:mm:ssZ");
        if (grace > TimeSpan.Zero)
        {
            terminating["metadata"]!["deletionGracePeriodSeconds"] = (int)Math.Ceiling(grace.TotalSeconds);
        }

        Store(resource, ns, name, terminating, "MODIFIED");
        var uid = terminating["metadata"]!["uid"]!.GetValue<string>();
        if (grace > TimeSpan.Zero)
        {
            // The kubelet stops the containers, then removes the pod (with grace 0); finalizers still hold it after that.
            Later(grace, () =>
            {
                if (objects.TryGetValue((resource, ns, name), out var current) && current["metadata"]!["uid"]!.GetValue<string>() == uid)
                {
                    var done = (JsonObject)current.DeepClone();
                    done["metadata"]!.AsObject().Remove("deletionGracePeriodSeconds");
                    StoreOrFinishDeletion(resource, ns, name, done);
                }
            });
        }

        return (JsonObject)terminating.DeepClone();
    }

    /// <summary>The object is gone (DELETED); the garbage collector deletes what it owned a moment later.</summary>
    private void Deleted(string resource, string ns, string name)
    {
        if (!objects.TryGetValue((resource, ns, name), out var existing))
        {
            return;
        }

        var uid = existing["metadata"]!["uid"]!.GetValue<string>();
        Store(resource, ns, name, (JsonObject)existing.DeepClone(), "DELETED");
        Later(CollectionDelay, () =>
        {
            foreach (var owned in objects.Where(o => o.Key.Namespace == ns && OwnedBy(o.Value, uid)).Select(o => o.Key).ToList())
            {
                Delete(owned.Resource, owned.Namespace, owned.Name, gracePeriod: null);
            }
        });
    }

    /// <summary>Runs a controller's later step under the store's lock, unless the server has stopped.</summary>
    private void Later(TimeSpan delay, Action step) =>
        _ = Task.Delay(delay, stopped.Token).ContinueWith(t =>
        {
            if (t.IsCompletedSuccessfully)
            {
                lock (gate)
                {
                    step();
                }
            }
        }, TaskScheduler.Default);

    /// <summary>A new claim binds at once, or waits for its first consumer, or stays Pending without a storage class, as its class says.</summary>
    private void BindOrWait(string ns, string claimName)
    {
        var claim = objects[("persistentvolumeclaims", ns, claimName)];
        var className = claim["spec"]?["storageClassName"]?.GetValue<string>();
        var storageClass = className is { Length: > 0 }
            ? objects.GetValueOrDefault(("storageclasses", "", className))
            : objects.Where(o => o.Key.Resource == "storageclasses" && o.Value["metadata"]?["annotations"]?["storageclass.kubernetes.io/is-default-class"]?.GetValue<string>() == "true")
                .Select(o => o.Value).FirstOrDefault();
        if (storageClass is null)
        {
            SetClaimPhase(ns, claimName, "Pending");
            RecordEvent(ns, "PersistentVolumeClaim", claimName, "Warning", "ProvisioningFailed",
                className is { Length: > 0 } ? $"storageclass.storage.k8s.io \"{className}\" not found" : "no persistent volumes available for this claim and no storage class is set");
        }
        else if (storageClass["volumeBindingMode"]?.GetValue<string>() == "WaitForFirstConsumer"
            && !objects.Any(o => o.Key.Resource == "pods" && o.Key.Namespace == ns && Uses(o.Value, claimName)))
        {
            SetClaimPhase(ns, claimName, "Pending");
            RecordEvent(ns, "PersistentVolumeClaim", claimName, "Normal", "WaitForFirstConsumer", "waiting for first consumer to be created before binding");
        }
        else
        {
            SetClaimPhase(ns, claimName, "Bound");
        }
    }

    /// <summary>A new pod is the first consumer of the WaitForFirstConsumer claims it mounts.</summary>
    private void BindClaimsOf(string ns, JsonObject pod)
    {
        foreach (var volume in pod["spec"]?["volumes"]?.AsArray() ?? [])
        {
            if (volume?["persistentVolumeClaim"]?["claimName"]?.GetValue<string>() is { } claimName
                && objects.GetValueOrDefault(("persistentvolumeclaims", ns, claimName)) is { } claim && claim["status"]?["phase"]?.GetValue<string>() == "Pending"
                && objects.GetValueOrDefault(("storageclasses", "", claim["spec"]?["storageClassName"]?.GetValue<string>() ?? "")) is { } storageClass
                && storageClass["volumeBindingMode"]?.GetValue<string>() == "WaitForFirstConsumer")
            {
                SetClaimPhase(ns, claimName, "Bound");
            }
        }
    }

    private static bool Uses(JsonObject pod, string claimName) =>
        pod["spec"]?["volumes"]?.AsArray().Any(v => v?["persistentVolumeClaim"]?["claimName"]?.GetValue<string>() == claimName) is true;

    private void SetClaimPhase(string ns, string claimName, string phase)
    {
        var claim = (JsonObject)objects[("persistentvolumeclaims", ns, claimName)].DeepClone();
        if (claim["status"]?["phase"]?.GetValue<string>() != phase)
        {
            claim["status"] = new JsonObject { ["phase"] = phase };
            Store("persistentvolumeclaims", ns, claimName, claim, "MODIFIED");
        }
    }

    /// <summary>An event as the volume provisioner records it.</summary>
    private void RecordEvent(string ns, string kind, string name, string type, string reason, string message)
    {
        var eventName = $"{name}.{Guid.NewGuid():N}"[..Math.Min(63, name.Length + 17)];
        Store("events", ns, eventName, new JsonObject
        {
            ["apiVersion"] = "v1", ["kind"] = "Event",
            ["metadata"] = new JsonObject { ["name"] = eventName, ["namespace"] = ns, ["uid"] = Guid.NewGuid().ToString(), ["creationTimestamp"] = Now() },
            ["involvedObject"] = new JsonObject { ["kind"] = kind, ["name"] = name, ["namespace"] = ns },
            ["type"] = type, ["reason"] = reason, ["message"] = message, ["lastTimestamp"] = Now(),
        }, "ADDED");
    }

    private static string Now() => DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ");

    private async Task WriteListAsync(HttpContext context, string resource, string ns, string? selector, (string Group, string Version, string Kind) kind)
    {
        JsonObject list;
        lock (gate)
        {
            list = new JsonObject
            {
                ["kind"] = kind.Kind + "List",
                ["apiVersion"] = kind.Version,
                ["metadata"] = new JsonObject { ["resourceVersion"] = resourceVersion.ToString(System.Globalization.CultureInfo.InvariantCulture) },
                ["items"] = new JsonArray([.. List(resource, ns, selector)]),
            };
        }

        await WriteJsonAsync(context, 200, list);
    }

    /// <summary>
    /// A chunked stream of {"type","object"} lines, one per change, until the client goes away, the server stops or the
    /// watch times out. A resourceVersion older than the retained history gets 410 Gone, as an ERROR event.
    /// </summary>
    private async Task WatchAsync(HttpContext context, string resource, string ns, string? selector, string? fromVersion, bool bookmarks, TimeSpan timeout)
    {
        var watcher = new Watcher(resource, ns, selector, Channel.CreateUnbounded<string>());
        while (true)
        {
            Task cutOff;
            lock (gate)
            {
                if (partition is null)
                {
                    if (long.TryParse(fromVersion, out var from) && from > 0)
                    {
                        if (from < compactedThrough)
                        {
                            Interlocked.Increment(ref expiredWatches);
                            var (_, status) = Status(410, "Expired", $"too old resource version: {from} ({compactedThrough + 1})");
                            watcher.Events.Writer.TryWrite(new JsonObject { ["type"] = "ERROR", ["object"] = status }.ToJsonString());
                            watcher.Events.Writer.TryComplete();
                        }
                        else
                        {
                            foreach (var change in history.Where(h => h.Version > from && h.Resource == resource && h.Namespace == ns && Matches(h.Object, selector)))
                            {
                                watcher.Events.Writer.TryWrite(Event(change.Type, change.Object));
                            }
                        }
                    }
                    else
                    {
                        foreach (var current in List(resource, ns, selector))
                        {
                            watcher.Events.Writer.TryWrite(Event("ADDED", current));
                        }
                    }

                    watchers.Add(watcher);
                    break;
                }

                cutOff = partition.Task;
            }

            await cutOff.WaitAsync(context.RequestAborted);
        }

        using var ends = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, stopped.Token);
        ends.CancelAfter(timeout);
        var bookmarking = bookmarks ? BookmarkAsync(watcher, Resources[resource], ends.Token) : Task.CompletedTask;
        try
        {
            context.Response.StatusCode = 200;
            context.Response.ContentType = "application/json";
            await context.Response.StartAsync(ends.Token);
            await foreach (var line in watcher.Events.Reader.ReadAllAsync(ends.Token))
            {
                await context.Response.WriteAsync(line + "\n", ends.Token);
                await context.Response.Body.FlushAsync(ends.Token);
            }
        }
        catch (OperationCanceledException)
        {
            // The client closed the watch, or it timed out: the response ends, and the client watches again.
        }
        finally
        {
            lock (gate)
            {
                watchers.Remove(watcher);
            }

            await ends.CancelAsync();
            await bookmarking.ContinueWith(_ => { }, TaskScheduler.Default);
        }
    }

    /// <summary>BOOKMARK events: the object has only its kind and the current resourceVersion, from which the client may watch again.</summary>
    private async Task BookmarkAsync(Watcher watcher, (string Group, string Version, string Kind) kind, CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            await Task.Delay(BookmarkInterval, cancellationToken);
            lock (gate)
            {
                // Written under the lock, after every change up to this version: the client has seen them all.
                watcher.Events.Writer.TryWrite(new JsonObject
                {
                    ["type"] = "BOOKMARK",
                    ["object"] = new JsonObject
                    {
                        ["kind"] = kind.Kind, ["apiVersion"] = kind.Version,
                        ["metadata"] = new JsonObject { ["resourceVersion"] = resourceVersion.ToString(System.Globalization.CultureInfo.InvariantCulture) },
                    },
                }.ToJsonString());
            }
        }
    }

    /// <summary>
    /// Cuts every watch off, as a network partition or an API server restart would: open streams end, and new watch
    /// requests wait until <see cref="HealAndCompact"/>. Changes made meanwhile reach no watcher.
    /// </summary>
    public void Partition()
    {
        lock (gate)
        {
            partition ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            foreach (var watcher in watchers)
            {
                watcher.Events.Writer.TryComplete();
            }
        }
    }

    /// <summary>Ends the partition after etcd compacted the history: watches from any version seen before get 410 Gone.</summary>
    public void HealAndCompact()
    {
        TaskCompletionSource? cutOff;
        lock (gate)
        {
            compactedThrough = resourceVersion;
            history.Clear();
            (cutOff, partition) = (partition, null);
        }

        cutOff?.TrySetResult();
    }

    private static string Event(string type, JsonObject value) => new JsonObject { ["type"] = type, ["object"] = value.DeepClone() }.ToJsonString();

    private static (int, JsonObject) NotFound(string kind, string name) =>
        Status(404, "NotFound", $"{kind.ToLowerInvariant()}s \"{name}\" not found", kind, name);

    private static (int, JsonObject) Status(int code, string reason, string message, string? kind = null, string? name = null) =>
        (code, new JsonObject
        {
            ["kind"] = "Status", ["apiVersion"] = "v1", ["metadata"] = new JsonObject(), ["status"] = "Failure",
            ["message"] = message, ["reason"] = reason, ["code"] = code,
            ["details"] = name is null ? null : new JsonObject { ["name"] = name, ["kind"] = kind },
        });

    private static Task WriteStatusAsync(HttpContext context, int code, string reason, string message)
    {
        var (status, body) = Status(code, reason, message);
        return WriteJsonAsync(context, status, body);
    }

    private static async Task WriteJsonAsync(HttpContext context, int status, JsonObject body)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(body.ToJsonString(), Encoding.UTF8);
    }

    /// <summary>RFC 7386: objects merge recursively, null removes, anything else replaces.</summary>
    private static JsonNode? MergePatch(JsonNode? target, JsonNode? patch)
    {
        if (patch is not JsonObject patchObject)
        {
            return patch?.DeepClone();
        }

        var result = target as JsonObject ?? new JsonObject();
        foreach (var (key, value) in patchObject)
        {
            if (value is null)
            {
                result.Remove(key);
            }
            else
            {
                result[key] = MergePatch(result[key]?.DeepClone(), value);
            }
        }

        return result;
    }

    /// <summary>Equality-based selectors: k=v, k==v, k!=v and k (exists), comma-separated.</summary>
    private static bool Matches(JsonObject value, string? selector)
    {
        if (string.IsNullOrWhiteSpace(selector))
        {
            return true;
        }

        var labels = value["metadata"]?["labels"] as JsonObject;
        string? Label(string key) => labels?[key]?.GetValue<string>();
        foreach (var requirement in selector.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var matched = requirement.Split("!=") is [var k1, var v1] ? Label(k1) != v1
                : requirement.Split('=', StringSplitOptions.RemoveEmptyEntries) is [var k2, var v2] ? Label(k2) == v2
                : Label(requirement) is not null;
            if (!matched)
            {
                return false;
            }
        }

        return true;
    }

    private static bool OwnedBy(JsonObject value, string uid) =>
        value["metadata"]?["ownerReferences"]?.AsArray().Any(r => r?["uid"]?.GetValue<string>() == uid) is true;

    private static string Version(JsonObject value) => value["metadata"]!["resourceVersion"]!.GetValue<string>();

    private static bool IsDnsName(string name) =>
        name.Length is > 0 and <= 253 && name.All(c => c is >= 'a' and <= 'z' or >= '0' and <= '9' or '-' or '.') && char.IsAsciiLetterOrDigit(name[0]) && char.IsAsciiLetterOrDigit(name[^1]);

    public async ValueTask DisposeAsync()
    {
        await stopped.CancelAsync();
        lock (gate)
        {
            foreach (var watcher in watchers)
            {
                watcher.Events.Writer.TryComplete();
            }
        }

        await app.StopAsync();
        await app.DisposeAsync();
        Directory.Delete(directory, recursive: true);
    }

    private sealed record Watcher(string Resource, string Namespace, string? Selector, Channel<string> Events);
}
