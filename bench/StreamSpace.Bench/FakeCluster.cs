using System.Text.Json.Nodes;
using StreamSpace.Tests.Agent.Kubernetes;

namespace StreamSpace.Bench;

/// <summary>
/// The Kubernetes tunnel rows' cluster, run as <c>--fake-cluster READY_FILE POD_IP NAMESPACE...</c>: the tests' fake
/// API server (<see cref="FakeKubernetesApi"/>, whose source the bench links rather than copies) in a process of its own,
/// so the CPU of its pods/portforward relay is measured apart from the bench's clients. It plays the kubelet too: every
/// session pod that appears is marked Running and Ready at POD_IP (<see cref="FakePodStatus.Ready"/>, as the tests'
/// <see cref="FakeKubelet"/> does), where the bench runs the synthetic VNC server as the pod's container. Once it serves,
/// it writes its kubeconfig's path to READY_FILE.
/// </summary>
public static class FakeCluster
{
    /// <summary>How often the kubelet looks for new pods: a real kubelet reports a started container within about a second.</summary>
    private static readonly TimeSpan KubeletInterval = TimeSpan.FromMilliseconds(100);

    public static async Task<int> RunAsync(string[] arguments)
    {
        if (arguments is not [var readyFile, var podIp, .. var namespaces] || namespaces.Length == 0)
        {
            Console.Error.WriteLine("usage: --fake-cluster READY_FILE POD_IP NAMESPACE...");
            return 2;
        }

        await using var api = await FakeKubernetesApi.StartAsync();
        // A real API server holds watches open for minutes; the fake's 5 s default suits tests that cut watches off.
        api.WatchTimeout = TimeSpan.FromMinutes(5);
        api.Put("storageclasses", "", new JsonObject
        {
            ["metadata"] = new JsonObject
            {
                ["name"] = "standard",
                ["annotations"] = new JsonObject { ["storageclass.kubernetes.io/is-default-class"] = "true" },
            },
            ["provisioner"] = "rancher.io/local-path",
            ["volumeBindingMode"] = "Immediate",
        });
        await File.WriteAllTextAsync(readyFile + ".partial", api.KubeconfigPath);
        File.Move(readyFile + ".partial", readyFile);

        using var kubelet = new PeriodicTimer(KubeletInterval);
        while (await kubelet.WaitForNextTickAsync())
        {
            foreach (var ns in namespaces)
            {
                foreach (var pod in api.List("pods", ns))
                {
                    if (pod["metadata"]!["deletionTimestamp"] is null && pod["status"]?["podIP"] is null)
                    {
                        api.Update("pods", ns, pod["metadata"]!["name"]!.GetValue<string>(), p => p["status"] = FakePodStatus.Ready(podIp));
                    }
                }
            }
        }

        return 0;
    }
}
