using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;

namespace StreamSpace.Bench;

/// <summary>
/// Rows (c-k8s-podip) and (c-k8s-portforward), for information: path (c) with an agent on the kubernetes platform against
/// the tests' fake API server (<see cref="FakeCluster"/>), one agent per SESSION_TUNNEL mode, each in a namespace of its
/// own. The session's "pod" is the synthetic VNC server listening on a loopback address of its own as the pod IP; by pod
/// IP the agent dials it, by port-forward it goes through the fake API server's pods/portforward WebSocket.
/// </summary>
public static partial class TunnelBench
{
    private const string KubernetesTemplate = "bench-k8s-synthetic";

    /// <summary>The processes behind the Kubernetes rows; disposing stops the pod and the cluster (the agents are the bench's).</summary>
    private sealed class KubernetesRig(BenchProcess pod, BenchProcess cluster) : IDisposable
    {
        /// <summary>The fake API server's kubeconfig; its folder goes with the cluster, which is killed and cannot remove it itself.</summary>
        public string? Kubeconfig { get; set; }

        public BenchProcess Pod => pod;

        public BenchProcess Cluster => cluster;

        public List<BenchAgent> Agents { get; } = [];

        public void Dispose()
        {
            cluster.Dispose();
            pod.Dispose();
            if (Path.GetDirectoryName(Kubeconfig) is { } folder && Directory.Exists(folder))
            {
                Directory.Delete(folder, recursive: true);
            }
        }
    }

    /// <summary>Starts the fake cluster, the pod and the two agents; a failure is the caller's to report, with the rig so far to stop.</summary>
    private static async Task<KubernetesRig> StartKubernetesAsync(BenchContext bench, Action<KubernetesRig> started)
    {
        // A pod IP no other test's simulated pod uses: a random loopback address (all of 127/8 reaches lo).
        var podIp = $"127.{Random.Shared.Next(100, 200)}.{Random.Shared.Next(1, 255)}.{Random.Shared.Next(1, 255)}";
        var port = BenchContext.FreePort();
        var benchDll = typeof(TunnelBench).Assembly.Location;
        var pod = BenchProcess.Start("k8s-pod", "dotnet", [benchDll, "--synthetic-vnc", $"{podIp}:{port}"], bench.Environment, Path.Combine(bench.Work, "k8s-pod.log"));
        var readyFile = Path.Combine(bench.Work, "fake-cluster.ready");
        BenchProcess cluster;
        try
        {
            cluster = BenchProcess.Start("fake-kube-apiserver", "dotnet", [benchDll, "--fake-cluster", readyFile, podIp, "sessions-podip", "sessions-portforward"],
                bench.Environment, Path.Combine(bench.Work, "fake-cluster.log"));
        }
        catch
        {
            pod.Dispose();
            throw;
        }

        var rig = new KubernetesRig(pod, cluster);
        started(rig);
        await BenchContext.Until(() => Task.FromResult(File.Exists(readyFile) || cluster.HasExited), "the fake Kubernetes API server to serve", TimeSpan.FromSeconds(60));
        if (!File.Exists(readyFile))
        {
            throw new InvalidOperationException($"the fake Kubernetes API server exited with {cluster.ExitCode} (log: {Path.Combine(bench.Work, "fake-cluster.log")})");
        }

        await BenchContext.Until(async () => await ListeningAsync(podIp, port), $"the pod's synthetic VNC server to listen on {podIp}:{port}", TimeSpan.FromSeconds(60));
        var kubeconfig = rig.Kubeconfig = await File.ReadAllTextAsync(readyFile);

        using var template = await bench.Http.PostAsJsonAsync("/api/v1/templates", new Dictionary<string, object>
        {
            ["name"] = KubernetesTemplate,
            ["display_name"] = KubernetesTemplate,
            ["image"] = "streamspace/bench-synthetic-vnc:1",
            ["vnc_port"] = port,
            ["idle_timeout"] = "8h",
        });
        if (!template.IsSuccessStatusCode && template.StatusCode != HttpStatusCode.Conflict)
        {
            throw new InvalidOperationException($"could not create template {KubernetesTemplate}: {(int)template.StatusCode} {await template.Content.ReadAsStringAsync()}");
        }

        foreach (var mode in new[] { "podip", "portforward" })
        {
            rig.Agents.Add(await bench.StartAgentAsync($"bench-agent-k8s-{mode}", new Dictionary<string, string>
            {
                ["PLATFORM"] = "kubernetes",
                ["KUBECONFIG"] = kubeconfig,
                ["SESSION_NAMESPACE"] = $"sessions-{mode}",
                ["SESSION_TUNNEL"] = mode,
            }));
        }

        return rig;
    }

    private static async Task<bool> ListeningAsync(string address, int port)
    {
        try
        {
            using var client = new TcpClient();
            await client.ConnectAsync(IPAddress.Parse(address), port);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>The text the report gives a Kubernetes row it could not measure, and why.</summary>
    private static string NotMeasured(string row, Exception e) =>
        $"{row} was not measured: {e.GetType().Name}: {e.Message.Split('\n')[0]}";
}
