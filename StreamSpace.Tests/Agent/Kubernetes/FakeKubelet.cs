using System.Text.Json.Nodes;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Agent.Kubernetes;

/// <summary>Plays the kubelet and scheduler for the fake API server: moves a session's pod to the states the agent must map.</summary>
public sealed class FakeKubelet(FakeKubernetesApi api, string ns)
{
    /// <summary>
    /// The session's current pod, once the fake's controllers made it: the one not being deleted, when an old one still
    /// terminates beside it. <paramref name="not"/>: a pod that is known to be on its way out, to wait for its replacement.
    /// </summary>
    public async Task<JsonObject> PodAsync(string sessionId, string? not = null)
    {
        JsonObject? pod = null;
        await Eventually.TrueAsync(() =>
        {
            pod = api.List("pods", ns, $"session-id={sessionId}")
                .SingleOrDefault(p => p["metadata"]!["deletionTimestamp"] is null && p["metadata"]!["name"]!.GetValue<string>() != not);
            return Task.FromResult(pod is not null);
        }, TimeSpan.FromSeconds(20), $"a pod for session {sessionId}");
        return pod!;
    }

    public Task MarkReadyAsync(string sessionId, string podIp) => SetStatusAsync(sessionId, FakePodStatus.Ready(podIp));

    public Task FailImagePullAsync(string sessionId, string message) => SetStatusAsync(sessionId, new JsonObject
    {
        ["phase"] = "Pending",
        ["conditions"] = new JsonArray(FakePodStatus.Condition("PodScheduled", "True"), FakePodStatus.Condition("Ready", "False", "ContainersNotReady")),
        ["containerStatuses"] = new JsonArray(Waiting("ImagePullBackOff", message)),
    });

    public Task MarkUnschedulableAsync(string sessionId, string message) => SetStatusAsync(sessionId, new JsonObject
    {
        ["phase"] = "Pending",
        ["conditions"] = new JsonArray(FakePodStatus.Condition("PodScheduled", "False", "Unschedulable", message)),
    });

    public Task CrashLoopAsync(string sessionId, string lastMessage) => SetStatusAsync(sessionId, new JsonObject
    {
        ["phase"] = "Running",
        ["conditions"] = new JsonArray(FakePodStatus.Condition("PodScheduled", "True"), FakePodStatus.Condition("Ready", "False", "ContainersNotReady")),
        ["containerStatuses"] = new JsonArray(Waiting("CrashLoopBackOff", "back-off 40s restarting failed container", new JsonObject
        {
            ["terminated"] = new JsonObject { ["exitCode"] = 1, ["reason"] = "Error", ["message"] = lastMessage, ["finishedAt"] = FakePodStatus.Now() },
        })),
    });

    /// <summary>The kubelet cannot build the container: a Secret its env names is missing.</summary>
    public Task FailContainerConfigAsync(string sessionId, string message) => SetStatusAsync(sessionId, new JsonObject
    {
        ["phase"] = "Pending",
        ["conditions"] = new JsonArray(FakePodStatus.Condition("PodScheduled", "True"), FakePodStatus.Condition("Ready", "False", "ContainersNotReady")),
        ["containerStatuses"] = new JsonArray(Waiting("CreateContainerConfigError", message)),
    });

    private async Task SetStatusAsync(string sessionId, JsonObject status)
    {
        var pod = await PodAsync(sessionId);
        Assert.True(api.Update("pods", ns, pod["metadata"]!["name"]!.GetValue<string>(), p => p["status"] = status));
    }

    private static JsonObject Waiting(string reason, string message, JsonObject? lastState = null) => new()
    {
        ["name"] = "session", ["ready"] = false, ["restartCount"] = lastState is null ? 0 : 3, ["image"] = "session", ["imageID"] = "",
        ["state"] = new JsonObject { ["waiting"] = new JsonObject { ["reason"] = reason, ["message"] = message } },
        ["lastState"] = lastState ?? new JsonObject(),
    };
}
