using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging.Abstractions;
using StreamSpace.Agent;
using StreamSpace.Agent.Files;
using StreamSpace.Agent.Platforms.Kubernetes;
using StreamSpace.Contracts;
using StreamSpace.Contracts.Tunnel;

namespace StreamSpace.Tests.Agent.Kubernetes;

/// <summary>File transfer is not built for the kubernetes platform yet: the agent says so, with a 409 that names it.</summary>
public sealed class KubernetesFilesTests
{
    [Theory]
    [InlineData(FileStreams.Upload)]
    [InlineData(FileStreams.Download)]
    [InlineData(FileStreams.ListDownloads)]
    public async Task A_file_operation_is_answered_409_not_supported_on_the_kubernetes_platform(string purpose)
    {
        await using var kube = await FakeKubernetesApi.StartAsync();
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["KUBECONFIG"] = kube.KubeconfigPath }).Build();
        var settings = new AgentSettings { Platform = AgentPlatform.Kubernetes, SessionNamespace = "files" };
        using var platform = new KubernetesPlatform(settings, configuration, TimeProvider.System, NullLogger<KubernetesPlatform>.Instance);
        using var data = new MemoryStream();

        await new SessionFileStreams(platform, NullLogger<SessionFileStreams>.Instance)
            .RunAsync(new StreamOpenMessage(Guid.NewGuid(), "sess-1", "dt1.x", "", DateTimeOffset.UtcNow, purpose, "a.txt"), data, CancellationToken.None);

        data.Position = 0;
        var reply = await FileStreams.ReadReplyAsync(data, CancellationToken.None);
        Assert.Equal(409, reply.Status);
        Assert.Equal("Uploading and downloading files is not supported on the kubernetes platform yet.", reply.Error);
    }
}
