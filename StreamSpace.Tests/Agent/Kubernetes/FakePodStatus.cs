using System.Text.Json.Nodes;

namespace StreamSpace.Tests.Agent.Kubernetes;

/// <summary>
/// The pod statuses a kubelet writes, for <see cref="FakeKubelet"/> and for the bench's fake cluster (which links this
/// file with <see cref="FakeKubernetesApi"/>), so both play the kubelet alike.
/// </summary>
public static class FakePodStatus
{
    /// <summary>Scheduled, its container started and Ready, at that pod IP.</summary>
    public static JsonObject Ready(string podIp) => new()
    {
        ["phase"] = "Running",
        ["podIP"] = podIp,
        ["conditions"] = new JsonArray(Condition("PodScheduled", "True"), Condition("ContainersReady", "True"), Condition("Ready", "True")),
        ["containerStatuses"] = new JsonArray(new JsonObject
        {
            ["name"] = "session", ["ready"] = true, ["restartCount"] = 0, ["image"] = "session", ["imageID"] = "",
            ["state"] = new JsonObject { ["running"] = new JsonObject { ["startedAt"] = Now() } },
        }),
    };

    public static JsonObject Condition(string type, string status, string? reason = null, string? message = null) => new()
    {
        ["type"] = type, ["status"] = status, ["reason"] = reason, ["message"] = message, ["lastTransitionTime"] = Now(),
    };

    public static string Now() => DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ");
}
