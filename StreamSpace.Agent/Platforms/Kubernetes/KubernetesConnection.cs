using k8s;

namespace StreamSpace.Agent.Platforms.Kubernetes;

/// <summary>Which API server the agent talks to, as whom, and in which namespace its sessions run.</summary>
public static class KubernetesConnection
{
    private const string InClusterNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

    /// <summary>
    /// KUBECONFIG when set (development, tests), else the in-cluster service account, else ~/.kube/config; and whether
    /// that is the in-cluster account, i.e. whether the agent runs inside the cluster's network.
    /// </summary>
    public static (KubernetesClientConfiguration Config, bool InCluster) ClientConfiguration(IConfiguration configuration) =>
        configuration["KUBECONFIG"] is { Length: > 0 } kubeconfig ? (KubernetesClientConfiguration.BuildConfigFromConfigFile(kubeconfig), false)
        : KubernetesClientConfiguration.IsInCluster() ? (KubernetesClientConfiguration.InClusterConfig(), true)
        : (KubernetesClientConfiguration.BuildConfigFromConfigFile(), false);

    /// <summary>SESSION_NAMESPACE, else the agent's own namespace in the cluster, else the kubeconfig context's, else default.</summary>
    public static string SessionNamespace(AgentSettings settings, KubernetesClientConfiguration config) =>
        settings.SessionNamespace is { Length: > 0 } configured ? configured.Trim()
        : File.Exists(InClusterNamespaceFile) ? File.ReadAllText(InClusterNamespaceFile).Trim()
        : config.Namespace is { Length: > 0 } contextNamespace ? contextNamespace
        : "default";
}
