using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using StreamSpace.Agent;
using StreamSpace.Agent.ControlPlane;
using StreamSpace.Agent.Platforms.Kubernetes;
using StreamSpace.Tests.Api.Features.Agents;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Agent.Kubernetes;

/// <summary>
/// The real agent with PLATFORM=kubernetes, configured through its settings like the process is, and talking to the
/// fake API server through the real KubernetesClient over HTTP.
/// </summary>
public sealed class KubernetesAgentHost : IAsyncDisposable
{
    private readonly IHost host;

    private KubernetesAgentHost(IHost host) => this.host = host;

    public KubernetesPlatform Platform => host.Services.GetRequiredService<KubernetesPlatform>();

    public static async Task<KubernetesAgentHost> StartAsync(Uri hubUrl, string agentId, string agentKey, FakeKubernetesApi kubernetes,
        IReadOnlyDictionary<string, string?>? settings = null)
    {
        var host = await AgentHost.StartHostAsync(hubUrl, agentId, agentKey, new Dictionary<string, string?>
        {
            ["PLATFORM"] = "kubernetes",
            ["KUBECONFIG"] = kubernetes.KubeconfigPath,
            ["SESSION_NAMESPACE"] = KubernetesFixture.Namespace,
            ["SESSION_STORAGE_CLASS"] = "fast-ssd",
            ["SESSION_HOME_SIZE"] = "2Gi",
            ["SESSION_IMAGE_PULL_SECRETS"] = "registry-a, registry-b",
        }, settings);
        var agent = new KubernetesAgentHost(host);
        var client = host.Services.GetRequiredService<ControlPlaneClient>();
        await Eventually.TrueAsync(() => Task.FromResult(client.IsConnected), TimeSpan.FromSeconds(20), "the kubernetes agent to connect");
        return agent;
    }

    /// <summary>Stops the agent and leaves its sessions in the cluster, as a restarted agent would.</summary>
    public async ValueTask DisposeAsync()
    {
        await host.StopAsync();
        host.Dispose();
    }
}

/// <summary>The API, PostgreSQL, the fake Kubernetes API server and one kubernetes agent.</summary>
public sealed class KubernetesFixture : IAsyncLifetime
{
    public const string Namespace = "sessions";
    public const string AgentId = "k8s-agent";

    public ApiFactory Api { get; private set; } = null!;

    public FakeKubernetesApi Kubernetes { get; private set; } = null!;

    public FakeKubelet Kubelet { get; private set; } = null!;

    public KubernetesAgentHost Agent { get; private set; } = null!;

    public string AgentKey { get; private set; } = "";

    public async Task InitializeAsync()
    {
        Kubernetes = await FakeKubernetesApi.StartAsync();
        // The agent's SESSION_STORAGE_CLASS, binding as most cloud classes do: once a pod uses the claim.
        Kubernetes.Put("storageclasses", "", new System.Text.Json.Nodes.JsonObject
        {
            ["metadata"] = new System.Text.Json.Nodes.JsonObject { ["name"] = "fast-ssd" },
            ["provisioner"] = "ebs.csi.aws.com",
            ["volumeBindingMode"] = "WaitForFirstConsumer",
        });
        Kubelet = new FakeKubelet(Kubernetes, Namespace);
        Api = new ApiFactory(await SharedPostgres.CreateDatabaseAsync(), new Dictionary<string, string?> { ["SESSION_QUOTA"] = "50" }).Start();
        AgentKey = await Api.RegisterAgentAsync(AgentId);
        Agent = await StartAgentAsync();
    }

    /// <summary>
    /// A start timeout no test reaches unless it means to (those set their own), however slow the machine. With
    /// KUBECONFIG and no in-cluster account the agent counts as outside the cluster, so its tunnel goes through
    /// pods/portforward unless told otherwise.
    /// </summary>
    public Task<KubernetesAgentHost> StartAgentAsync(IReadOnlyDictionary<string, string?>? settings = null)
    {
        // Room for every session the tests leave running (SESSION_QUOTA is raised to match).
        var values = new Dictionary<string, string?> { ["SESSION_START_TIMEOUT"] = "5m", ["MAX_SESSIONS"] = "50" };
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            values[key] = value;
        }

        return KubernetesAgentHost.StartAsync(Api.AgentHubUrl, AgentId, AgentKey, Kubernetes, values);
    }

    /// <summary>For the restart tests: the old agent goes, a new one with the same id (and these extra settings) takes over.</summary>
    public async Task RestartAgentAsync(IReadOnlyDictionary<string, string?>? settings = null)
    {
        await Agent.DisposeAsync();
        // The hub marks an agent offline when its connection ends, and online at its next hello; a new agent that
        // connected before the old connection's end was written would be marked offline behind its back.
        await Eventually.TrueAsync(async () => (await Api.GetAgentAsync(AgentId)).GetProperty("status").GetString() == "offline",
            TimeSpan.FromSeconds(20), "the hub to mark the stopped agent offline");
        Agent = await StartAgentAsync(settings);
    }

    public async Task DisposeAsync()
    {
        await Agent.DisposeAsync();
        await Api.DisposeAsync();
        await Kubernetes.DisposeAsync();
    }
}
