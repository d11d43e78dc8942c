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
/// only what the agent uses: apps/v1 deployments (and their scale subresource) and core/v1 pods, services, secrets,
/// persistentvolumeclaims and events, namespaced; cluster-scoped storage.k8s.io/v1 storageclasses; get, list, create,
/// replace (PUT), patch, delete; label selectors; watch=true streams; resourceVersion; Status bodies for 404 NotFound,
/// 409 AlreadyExists/Conflict and 422 Invalid; authorization.k8s.io/v1 selfsubjectaccessreviews (answered from
/// <see cref="Denied"/>); and pods/portforward as a real WebSocket (v4.channel.k8s.io) to the simulated pod's address.
///
/// Where it is simpler than a real API server:
/// - Objects are untyped JSON; nothing is validated beyond metadata.name (a DNS-1123 name, else 422), and no defaults are set.
/// - Every PATCH (merge, strategic merge, apply) is applied as a JSON merge patch (RFC 7386): strategic merge's list
///   merging by key is not done. The agent only sends merge patches.
/// - One resourceVersion counter for everything. A watch with resourceVersion replays the changes after it from an
///   unbounded history (never 410 Gone); a watch without one starts with ADDED for every current object. Watches never time out.
/// - A built-in "deployment controller": a Deployment with replicas ≥ 1 gets one Pod (labels, annotations and spec from its template,
///   owned by the Deployment, Pending with no status); replicas 0 deletes it. readyReplicas follows the pod's Ready condition.
///   There are no ReplicaSets. Tests play the kubelet with <see cref="FakeKubelet"/>.
/// - Garbage collection is synchronous: deleting an object deletes, at once and recursively, the objects whose
///   ownerReferences name its uid, whatever the propagationPolicy. There are no finalizers and no graceful deletion.
/// - No authentication or authorization: every request is recorded instead, for comparison with the chart's Role;
///   <see cref="Denied"/> changes only what SelfSubjectAccessReview answers.
/// - Field selectors are not implemented (the agent sends none).
/// </summary>
public sealed class FakeKubernetesApi : IAsyncDisposable
{
    private static readonly Dictionary<string, (string Group, string Version, string Kind)> Resources = new()
    {
        ["deployments"] = ("apps", "apps/v1", "Deployment"),
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
    private readonly WebApplication app;
    private readonly string directory;
    private long resourceVersion = 1000;

    private FakeKubernetesApi(WebApplication app, string directory)
    {
        this.app = app;
        this.directory = directory;
    }

    public Uri Url { get; private set; } = null!;

    /// <summary>A kubeconfig naming this server, as the agent's KUBECONFIG.</summary>
    public string KubeconfigPath => Path.Combine(directory, "kubeconfig");

    public IReadOnlyCollection<KubernetesCall> Calls => calls;

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
            Store(resource, ns, name, next, "MODIFIED");
            return true;
        }
    }

    /// <summary>Deletes an object (and what it owns) as an operator with kubectl would; no agent request is recorded.</summary>
    public bool Remove(string resource, string ns, string name)
    {
        lock (gate)
        {
            var existed = objects.ContainsKey((resource, ns, name));
            Delete(resource, ns, name);
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
                await WatchAsync(context, resource, ns, selector, context.Request.Query["resourceVersion"].FirstOrDefault());
                return;
            case "list":
                await WriteListAsync(context, resource, ns, selector, kind);
                return;
        }

        int status;
        JsonObject response;
        lock (gate)
        {
            (status, response) = sub is "scale" ? Scale(verb, ns, name!, body) : Act(verb, resource, ns, name, body, kind);
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
            while (true)
            {
                var result = await socket.ReceiveAsync(buffer, done.Token);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    return;
                }

                // Every client message starts with its channel; only the data channel carries bytes for the pod.
                if (result.Count > 1 && buffer[0] == 0)
                {
                    await server.WriteAsync(buffer.AsMemory(1, result.Count - 1), done.Token);
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
        await Task.WhenAny(toPod, fromPod);
        await done.CancelAsync();
        await Task.WhenAll(toPod, fromPod).ContinueWith(_ => { }, TaskScheduler.Default);
        if (socket.State == WebSocketState.Open)
        {
            await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None).ContinueWith(_ => { }, TaskScheduler.Default);
        }
    }

    private (int, JsonObject) Act(string verb, string resource, string ns, string? name, JsonObject? body, (string Group, string Version, string Kind) kind)
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
                if (resource == "persistentvolumeclaims")
                {
                    body["status"] = new JsonObject { ["phase"] = "Bound" };
                }

                return (201, Stored(resource, ns, key.Item3, body, "ADDED"));
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
                return (200, Stored(resource, ns, key.Item3, body, "MODIFIED"));
            case "patch":
                if (existing is null)
                {
                    return NotFound(kind.Kind, key.Item3);
                }

                var patched = (JsonObject)MergePatch(existing.DeepClone(), body)!;
                return (200, Stored(resource, ns, key.Item3, patched, "MODIFIED"));
            case "delete":
                if (existing is null)
                {
                    return NotFound(kind.Kind, key.Item3);
                }

                Delete(resource, ns, key.Item3);
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

    /// <summary>Every change goes through here: a new resourceVersion, the history, the watchers, and the deployment controller.</summary>
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

        if (resource == "deployments" && type != "DELETED")
        {
            ReconcilePods(ns, value);
        }
        else if (resource == "pods" && snapshot["metadata"]?["ownerReferences"]?[0]?["name"]?.GetValue<string>() is { } owner)
        {
            UpdateReadyReplicas(ns, owner);
        }
    }

    private void ReconcilePods(string ns, JsonObject deployment)
    {
        var uid = deployment["metadata"]!["uid"]!.GetValue<string>();
        var name = deployment["metadata"]!["name"]!.GetValue<string>();
        var pods = objects.Where(o => o.Key.Resource == "pods" && o.Key.Namespace == ns && OwnedBy(o.Value, uid)).Select(o => o.Key.Name).ToList();
        var replicas = deployment["spec"]?["replicas"]?.GetValue<int>() ?? 1;
        if (replicas >= 1 && pods.Count == 0)
        {
            var template = deployment["spec"]!["template"]!;
            var podName = $"{name}-{Guid.NewGuid().ToString("N")[..5]}";
            var pod = new JsonObject
            {
                ["apiVersion"] = "v1",
                ["kind"] = "Pod",
                ["metadata"] = new JsonObject
                {
                    ["name"] = podName, ["namespace"] = ns, ["uid"] = Guid.NewGuid().ToString(),
                    ["creationTimestamp"] = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ"),
                    ["labels"] = template["metadata"]?["labels"]?.DeepClone(),
                    ["annotations"] = template["metadata"]?["annotations"]?.DeepClone(),
                    ["ownerReferences"] = new JsonArray(new JsonObject { ["apiVersion"] = "apps/v1", ["kind"] = "Deployment", ["name"] = name, ["uid"] = uid, ["controller"] = true }),
                },
                ["spec"] = template["spec"]?.DeepClone(),
                ["status"] = new JsonObject { ["phase"] = "Pending" },
            };
            Store("pods", ns, podName, pod, "ADDED");
        }
        else if (replicas == 0)
        {
            foreach (var pod in pods)
            {
                Delete("pods", ns, pod);
            }
        }
    }

    private void UpdateReadyReplicas(string ns, string deploymentName)
    {
        if (!objects.TryGetValue(("deployments", ns, deploymentName), out var deployment))
        {
            return;
        }

        var uid = deployment["metadata"]!["uid"]!.GetValue<string>();
        var pods = objects.Where(o => o.Key.Resource == "pods" && o.Key.Namespace == ns && OwnedBy(o.Value, uid)).Select(o => o.Value).ToList();
        var ready = pods.Count(p => p["status"]?["conditions"]?.AsArray().Any(c => c?["type"]?.GetValue<string>() == "Ready" && c["status"]?.GetValue<string>() == "True") is true);
        var status = new JsonObject { ["replicas"] = pods.Count, ["readyReplicas"] = ready, ["availableReplicas"] = ready };
        if (deployment["status"]?.ToJsonString() != status.ToJsonString())
        {
            var changed = (JsonObject)deployment.DeepClone();
            changed["status"] = status;
            Store("deployments", ns, deploymentName, changed, "MODIFIED");
        }
    }

    /// <summary>Deletes an object and, like the garbage collector (but at once), everything it owns.</summary>
    private void Delete(string resource, string ns, string name)
    {
        if (!objects.TryGetValue((resource, ns, name), out var existing))
        {
            return;
        }

        var uid = existing["metadata"]!["uid"]!.GetValue<string>();
        Store(resource, ns, name, (JsonObject)existing.DeepClone(), "DELETED");
        foreach (var owned in objects.Where(o => o.Key.Namespace == ns && OwnedBy(o.Value, uid)).Select(o => o.Key).ToList())
        {
            Delete(owned.Resource, owned.Namespace, owned.Name);
        }
    }

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

    /// <summary>A chunked stream of {"type","object"} lines, one per change, until the client goes away or the server stops.</summary>
    private async Task WatchAsync(HttpContext context, string resource, string ns, string? selector, string? fromVersion)
    {
        var watcher = new Watcher(resource, ns, selector, Channel.CreateUnbounded<string>());
        lock (gate)
        {
            if (long.TryParse(fromVersion, out var from) && from > 0)
            {
                foreach (var change in history.Where(h => h.Version > from && h.Resource == resource && h.Namespace == ns && Matches(h.Object, selector)))
                {
                    watcher.Events.Writer.TryWrite(Event(change.Type, change.Object));
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
        }

        try
        {
            context.Response.StatusCode = 200;
            context.Response.ContentType = "application/json";
            await context.Response.StartAsync(context.RequestAborted);
            await foreach (var line in watcher.Events.Reader.ReadAllAsync(context.RequestAborted))
            {
                await context.Response.WriteAsync(line + "\n", context.RequestAborted);
                await context.Response.Body.FlushAsync(context.RequestAborted);
            }
        }
        catch (OperationCanceledException)
        {
            // The client closed the watch.
        }
        finally
        {
            lock (gate)
            {
                watchers.Remove(watcher);
            }
        }
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
