using k8s.Models;
using StreamSpace.Agent.Platforms.Kubernetes;
using StreamSpace.Contracts;

namespace StreamSpace.Tests.Agent.Kubernetes;

/// <summary>The mapping from pod status to session state and reason, case by case, without a server.</summary>
public sealed class PodStatesTests
{
    [Fact]
    public void A_pod_whose_home_volume_is_not_bound_is_starting_with_a_home_volume_reason()
    {
        var pod = new V1Pod
        {
            Status = new V1PodStatus
            {
                Phase = "Pending",
                Conditions =
                [
                    new V1PodCondition { Type = "PodScheduled", Status = "False", Reason = "Unschedulable", Message = "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims." },
                ],
            },
        };

        Assert.Equal(new PodState(SessionState.Starting, "home volume pending: 0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims.", false), PodStates.Of(pod));
    }

    [Fact]
    public void A_crash_loop_without_a_termination_message_names_the_exit_code()
    {
        var pod = new V1Pod
        {
            Status = new V1PodStatus
            {
                ContainerStatuses =
                [
                    new V1ContainerStatus
                    {
                        Name = "session",
                        State = new V1ContainerState { Waiting = new V1ContainerStateWaiting { Reason = "CrashLoopBackOff" } },
                        LastState = new V1ContainerState { Terminated = new V1ContainerStateTerminated { ExitCode = 137, Reason = "OOMKilled" } },
                    },
                ],
            },
        };

        Assert.Equal(new PodState(SessionState.Failed, "the session crashed: exit code 137 (OOMKilled)", true), PodStates.Of(pod));
    }

    [Fact]
    public void A_pending_home_volume_gives_its_claims_reason_before_the_schedulers_words()
    {
        var pod = new V1Pod
        {
            Status = new V1PodStatus
            {
                Conditions = [new V1PodCondition { Type = "PodScheduled", Status = "False", Reason = "Unschedulable", Message = "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims." }],
            },
        };

        Assert.Equal(new PodState(SessionState.Starting, "home volume pending: waiting for a volume to be created by external provisioner \"ebs.csi.aws.com\"", false),
            PodStates.Of(pod, homeVolumePending: "waiting for a volume to be created by external provisioner \"ebs.csi.aws.com\""));
    }

    [Theory]
    [InlineData("FailedMount", "MountVolume.SetUp failed for volume \"home\": timed out", "home volume pending: MountVolume.SetUp failed for volume \"home\": timed out")]
    [InlineData("FailedScheduling", "0/2 nodes are available: 2 Insufficient cpu.", "waiting for resources: 0/2 nodes are available: 2 Insufficient cpu.")]
    [InlineData("Failed", "Failed to pull image \"x:1\": not found", "image pull failing: Failed to pull image \"x:1\": not found")]
    public void A_pod_whose_status_has_no_reason_takes_it_from_its_newest_warning(string reason, string message, string expected) =>
        Assert.Equal(new PodState(SessionState.Starting, expected, false),
            PodStates.Of(new V1Pod { Status = new V1PodStatus { Phase = "Pending" } }, lastWarning: new PodEvent(reason, message, DateTime.UtcNow)));

    [Fact]
    public void A_pending_pod_with_no_news_is_starting_without_a_reason() =>
        Assert.Equal(PodState.Starting, PodStates.Of(new V1Pod { Status = new V1PodStatus { Phase = "Pending" } }));

    [Fact]
    public void A_container_the_kubelet_cannot_configure_keeps_the_session_starting_with_the_kubelets_message()
    {
        var pod = new V1Pod
        {
            Status = new V1PodStatus
            {
                ContainerStatuses =
                [
                    new V1ContainerStatus
                    {
                        Name = "session",
                        State = new V1ContainerState { Waiting = new V1ContainerStateWaiting { Reason = "CreateContainerConfigError", Message = "secret \"db-creds\" not found" } },
                    },
                ],
            },
        };

        Assert.Equal(new PodState(SessionState.Starting, "invalid container configuration: secret \"db-creds\" not found", false), PodStates.Of(pod));
    }
}
