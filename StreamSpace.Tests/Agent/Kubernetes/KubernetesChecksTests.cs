using System.Text.Json.Nodes;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging.Abstractions;
using StreamSpace.Agent;
using StreamSpace.Agent.Platforms.Kubernetes;
using StreamSpace.Contracts;

namespace StreamSpace.Tests.Agent.Kubernetes;

/// <summary>
/// The kubernetes platform's own checks (RBAC, storage class), each against a fresh fake API server, so that what one
/// test takes away from the cluster no other test sees. The image pull check needs sessions and lives in KubernetesPlatformTests.
/// </summary>
public sealed class KubernetesChecksTests
{
    private const string Ns = "checks";

    [Fact]
    public async Task An_agent_whose_role_misses_a_verb_reports_kubernetes_rbac_fail_naming_it()
    {
        await using var kube = await FakeKubernetesApi.StartAsync();
        kube.Denied[FakeKubernetesApi.Permission("create", "", "pods", "portforward")] = true;
        kube.Denied[FakeKubernetesApi.Permission("watch", "", "events")] = true;
        using var platform = Platform(kube);

        var rbac = await CheckAsync(platform, KubernetesChecks.RbacId);
        Assert.Equal(AgentCheck.Fail, rbac.Status);
        Assert.Equal($"denied in namespace {Ns}: create pods/portforward, watch events", rbac.Evidence);
        Assert.Contains($"kubectl auth can-i create pods --subresource=portforward -n {Ns}", rbac.Fix);
    }

    [Fact]
    public async Task An_agent_whose_role_grants_everything_reports_kubernetes_rbac_ok()
    {
        await using var kube = await FakeKubernetesApi.StartAsync();
        using var platform = Platform(kube);

        var rbac = await CheckAsync(platform, KubernetesChecks.RbacId);
        Assert.Equal(AgentCheck.Ok, rbac.Status);
        Assert.Equal($"all {KubernetesChecks.Required.Count} permissions granted in namespace {Ns}", rbac.Evidence);
        // Each permission was asked about in the session namespace.
        Assert.Equal(KubernetesChecks.Required.Count, kube.Calls.Count(c => c.Resource == "selfsubjectaccessreviews"));
    }

    [Fact]
    public async Task A_configured_storage_class_that_does_not_exist_fails_and_one_that_exists_passes()
    {
        await using var kube = await FakeKubernetesApi.StartAsync();
        using (var platform = Platform(kube, storageClass: "fast-ssd"))
        {
            var missing = await CheckAsync(platform, KubernetesChecks.StorageClassId);
            Assert.Equal(AgentCheck.Fail, missing.Status);
            Assert.Equal("storage class fast-ssd (SESSION_STORAGE_CLASS) does not exist", missing.Evidence);
            Assert.Contains("k8sAgent.config.storageClass", missing.Fix);
        }

        kube.Put("storageclasses", "", StorageClass("fast-ssd", isDefault: false));
        using (var platform = Platform(kube, storageClass: "fast-ssd"))
        {
            var found = await CheckAsync(platform, KubernetesChecks.StorageClassId);
            Assert.Equal(AgentCheck.Ok, found.Status);
            Assert.Equal("storage class fast-ssd exists (provisioner ebs.csi.aws.com)", found.Evidence);
        }
    }

    [Fact]
    public async Task Without_a_configured_storage_class_the_cluster_needs_a_default_one()
    {
        await using var kube = await FakeKubernetesApi.StartAsync();
        kube.Put("storageclasses", "", StorageClass("slow-hdd", isDefault: false));
        using (var platform = Platform(kube, storageClass: ""))
        {
            var none = await CheckAsync(platform, KubernetesChecks.StorageClassId);
            Assert.Equal(AgentCheck.Fail, none.Status);
            Assert.Equal("no SESSION_STORAGE_CLASS and the cluster has no default storage class (classes: slow-hdd)", none.Evidence);
            Assert.Contains(KubernetesChecks.DefaultStorageClassAnnotation, none.Fix);
        }

        kube.Put("storageclasses", "", StorageClass("standard", isDefault: true));
        using (var platform = Platform(kube, storageClass: ""))
        {
            var found = await CheckAsync(platform, KubernetesChecks.StorageClassId);
            Assert.Equal(AgentCheck.Ok, found.Status);
            Assert.Equal("no SESSION_STORAGE_CLASS; the cluster's default is standard", found.Evidence);
        }

        Assert.Contains(new KubernetesCall("list", "storage.k8s.io", "storageclasses"), kube.Calls);
        Assert.DoesNotContain(new KubernetesCall("get", "storage.k8s.io", "storageclasses"), kube.Calls);
    }

    private static async Task<AgentCheck> CheckAsync(KubernetesPlatform platform, string id) =>
        Assert.Single(await platform.CheckAsync(CancellationToken.None), c => c.Id == id);

    private static KubernetesPlatform Platform(FakeKubernetesApi kube, string storageClass = "fast-ssd")
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["KUBECONFIG"] = kube.KubeconfigPath }).Build();
        var settings = new AgentSettings { Platform = AgentPlatform.Kubernetes, SessionNamespace = Ns, SessionStorageClass = storageClass };
        return new KubernetesPlatform(settings, configuration, TimeProvider.System, NullLogger<KubernetesPlatform>.Instance);
    }

    private static JsonObject StorageClass(string name, bool isDefault) => new()
    {
        ["metadata"] = new JsonObject
        {
            ["name"] = name,
            ["annotations"] = isDefault ? new JsonObject { [KubernetesChecks.DefaultStorageClassAnnotation] = "true" } : null,
        },
        ["provisioner"] = "ebs.csi.aws.com",
        ["volumeBindingMode"] = "WaitForFirstConsumer",
    };
}
