using k8s.Models;
using StreamSpace.Contracts;

namespace StreamSpace.Agent.Platforms.Kubernetes;

/// <summary>What a session pod's status means for the session, in words a user can act on.</summary>
public sealed record PodState(SessionState State, string? Reason, bool Terminal, bool ImagePullFailed = false)
{
    public static readonly PodState Starting = new(SessionState.Starting, null, false);
}

/// <summary>The gist of a Kubernetes event about a pod or PVC: its reason, its message and when it last happened.</summary>
public sealed record PodEvent(string Reason, string Message, DateTime At);

public static class PodStates
{
    private static readonly HashSet<string> ImagePullFailures = ["ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"];

    /// <summary>
    /// The pod's status decides; where it says nothing yet, the pod's home volume (<paramref name="homeVolumePending"/>:
    /// why its PVC is Pending) and its newest warning event give the reason the session waits.
    /// </summary>
    public static PodState Of(V1Pod pod, string? homeVolumePending = null, PodEvent? lastWarning = null)
    {
        var conditions = pod.Status?.Conditions ?? [];
        if (conditions.Any(c => c.Type == "Ready" && c.Status == "True"))
        {
            return new PodState(SessionState.Running, null, false);
        }

        foreach (var container in pod.Status?.ContainerStatuses ?? [])
        {
            var waiting = container.State?.Waiting;
            if (waiting?.Reason is { } reason && ImagePullFailures.Contains(reason))
            {
                return new PodState(SessionState.Failed, $"image pull failed: {waiting.Message ?? reason}", true, ImagePullFailed: true);
            }

            if (waiting?.Reason == "CrashLoopBackOff")
            {
                var terminated = container.LastState?.Terminated;
                var why = terminated?.Message is { Length: > 0 } message ? message.Trim()
                    : terminated is not null ? $"exit code {terminated.ExitCode}{(terminated.Reason is { } r ? $" ({r})" : "")}"
                    : waiting.Message ?? "CrashLoopBackOff";
                return new PodState(SessionState.Failed, $"the session crashed: {why}", true);
            }

            if (waiting?.Reason is "CreateContainerConfigError" or "CreateContainerError")
            {
                // Usually a Secret or ConfigMap the template's env names is missing. The kubelet retries, so the session
                // waits (and fails at its start timeout) rather than failing at once: creating the Secret lets it start.
                return new PodState(SessionState.Starting, $"invalid container configuration: {waiting.Message ?? waiting.Reason}", false);
            }
        }

        if (homeVolumePending is not null)
        {
            // Before the scheduler's own words: the PVC's event says why it is not bound (no provisioner, quota, …).
            return new PodState(SessionState.Starting, $"home volume pending: {homeVolumePending}", false);
        }

        if (conditions.FirstOrDefault(c => c.Type == "PodScheduled" && c.Status == "False" && c.Reason == "Unschedulable") is { } unschedulable)
        {
            var message = unschedulable.Message ?? "no node fits the session";
            // The scheduler says so when the user's home PVC is not bound yet (no storage class, no provisioner, quota).
            return message.Contains("PersistentVolumeClaim", StringComparison.OrdinalIgnoreCase)
                ? new PodState(SessionState.Starting, $"home volume pending: {message}", false)
                : new PodState(SessionState.Starting, $"waiting for resources: {message}", false);
        }

        return lastWarning?.Reason switch
        {
            "FailedScheduling" => new PodState(SessionState.Starting, $"waiting for resources: {lastWarning.Message}", false),
            "FailedMount" or "FailedAttachVolume" => new PodState(SessionState.Starting, $"home volume pending: {lastWarning.Message}", false),
            _ when lastWarning is not null && IsImagePullFailure(lastWarning) => new PodState(SessionState.Starting, $"image pull failing: {lastWarning.Message}", false),
            _ => PodState.Starting,
        };
    }

    /// <summary>The kubelet's events for a failed pull: "Failed" (Failed to pull image …) and "BackOff" (Back-off pulling image …).</summary>
    public static bool IsImagePullFailure(PodEvent news) =>
        news.Reason is "Failed" or "BackOff" or "ErrImagePull" or "ImagePullBackOff"
        && news.Message.Contains("pull", StringComparison.OrdinalIgnoreCase);
}
