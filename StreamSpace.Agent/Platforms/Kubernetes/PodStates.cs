using k8s.Models;

namespace StreamSpace.Agent.Platforms.Kubernetes;

/// <summary>What a session pod's status means for the session, in words a user can act on.</summary>
public sealed record PodState(string State, string? Reason, bool Terminal)
{
    public static readonly PodState Starting = new("starting", null, false);
}

public static class PodStates
{
    private static readonly HashSet<string> ImagePullFailures = ["ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"];

    public static PodState Of(V1Pod pod)
    {
        var conditions = pod.Status?.Conditions ?? [];
        if (conditions.Any(c => c.Type == "Ready" && c.Status == "True"))
        {
            return new PodState("running", null, false);
        }

        foreach (var container in pod.Status?.ContainerStatuses ?? [])
        {
            var waiting = container.State?.Waiting;
            if (waiting?.Reason is { } reason && ImagePullFailures.Contains(reason))
            {
                return new PodState("failed", $"image pull failed: {waiting.Message ?? reason}", true);
            }

            if (waiting?.Reason == "CrashLoopBackOff")
            {
                var terminated = container.LastState?.Terminated;
                var why = terminated?.Message is { Length: > 0 } message ? message.Trim()
                    : terminated is not null ? $"exit code {terminated.ExitCode}{(terminated.Reason is { } r ? $" ({r})" : "")}"
                    : waiting.Message ?? "CrashLoopBackOff";
                return new PodState("failed", $"the session crashed: {why}", true);
            }
        }

        if (conditions.FirstOrDefault(c => c.Type == "PodScheduled" && c.Status == "False" && c.Reason == "Unschedulable") is { } unschedulable)
        {
            var message = unschedulable.Message ?? "no node fits the session";
            // The scheduler says so when the user's home PVC is not bound yet (no storage class, no provisioner, quota).
            return message.Contains("PersistentVolumeClaim", StringComparison.OrdinalIgnoreCase)
                ? new PodState("starting", $"home volume pending: {message}", false)
                : new PodState("starting", $"waiting for resources: {message}", false);
        }

        return PodState.Starting;
    }
}
