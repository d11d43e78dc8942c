using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using k8s.Models;
using StreamSpace.Agent.Platforms.Kubernetes;
using StreamSpace.Agent.Tunnel;
using StreamSpace.Contracts;
using StreamSpace.Contracts.Api;
using StreamSpace.Tests.Api.Features.Sessions;
using StreamSpace.Tests.Chart;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Agent.Kubernetes;

/// <summary>
/// The agent's kubernetes platform end to end: sessions created through the real API, carried out by the real agent
/// with the real KubernetesClient against the fake API server, with the test playing the kubelet.
/// </summary>
public sealed class KubernetesPlatformTests(KubernetesFixture fixture) : IClassFixture<KubernetesFixture>
{
    private const string Ns = KubernetesFixture.Namespace;
    private static int lastPodAddress = 1;

    private FakeKubernetesApi Kube => fixture.Kubernetes;

    [Fact]
    public async Task A_session_is_a_deployment_with_labels_resources_probe_home_and_secret_and_runs_when_its_pod_is_ready()
    {
        var username = "Kate.Doe-" + Guid.NewGuid().ToString("N")[..4];
        using var user = await fixture.Api.NewUserClientAsync(username);
        var id = (await user.LaunchAsync()).Id;
        var pod = await fixture.Kubelet.PodAsync(id);

        var deployment = Kube.Get("deployments", Ns, $"session-{id}")!;
        var labels = deployment["metadata"]!["labels"]!.AsObject();
        Assert.Equal("session", labels["app"]!.GetValue<string>());
        Assert.Equal(id, labels["session-id"]!.GetValue<string>());
        Assert.Equal("streamspace", labels["app.kubernetes.io/managed-by"]!.GetValue<string>());
        var safeUser = labels["streamspace.io/user"]!.GetValue<string>();
        Assert.Matches("^[a-z0-9]([a-z0-9-]*[a-z0-9])?$", safeUser);
        Assert.StartsWith(username.ToLowerInvariant().Replace('.', '-'), safeUser, StringComparison.Ordinal);
        Assert.Equal(1, deployment["spec"]!["replicas"]!.GetValue<int>());

        var podSpec = deployment["spec"]!["template"]!["spec"]!;
        Assert.Equal(labels.ToJsonString(), deployment["spec"]!["template"]!["metadata"]!["labels"]!.ToJsonString());
        Assert.True(podSpec["securityContext"]!["runAsNonRoot"]!.GetValue<bool>());
        Assert.Equal(1000, podSpec["securityContext"]!["runAsUser"]!.GetValue<int>());
        Assert.Equal(1000, podSpec["securityContext"]!["fsGroup"]!.GetValue<int>());
        Assert.Equal(["registry-a", "registry-b"], podSpec["imagePullSecrets"]!.AsArray().Select(s => s!["name"]!.GetValue<string>()));
        var container = podSpec["containers"]![0]!;
        Assert.Equal("ghcr.io/streamspace-dev/streamspace-session-xterm:0.1.0", container["image"]!.GetValue<string>());
        Assert.Equal(5900, container["ports"]![0]!["containerPort"]!.GetValue<int>());
        Assert.Equal(5900, container["readinessProbe"]!["tcpSocket"]!["port"]!.GetValue<int>());
        Assert.Equal("500m", container["resources"]!["requests"]!["cpu"]!.GetValue<string>());
        Assert.Equal("512Mi", container["resources"]!["limits"]!["memory"]!.GetValue<string>());
        // The password is the Secret's password file, mounted read-only where VNC_PASSWORD_FILE points.
        var passwordFile = container["env"]!.AsArray().Single(e => e!["name"]!.GetValue<string>() == "VNC_PASSWORD_FILE")!["value"]!.GetValue<string>();
        Assert.DoesNotContain(container["env"]!.AsArray(), e => e!["name"]!.GetValue<string>() == "VNC_PASSWORD");
        var mounts = container["volumeMounts"]!.AsArray().ToDictionary(m => m!["name"]!.GetValue<string>(), m => m!);
        var volumes = podSpec["volumes"]!.AsArray().ToDictionary(v => v!["name"]!.GetValue<string>(), v => v!);
        var passwordMount = mounts.Values.Single(m => volumes[m["name"]!.GetValue<string>()]["secret"] is not null);
        Assert.True(passwordMount["readOnly"]!.GetValue<bool>());
        var passwordVolume = volumes[passwordMount["name"]!.GetValue<string>()]["secret"]!;
        Assert.Equal($"session-{id}-vnc", passwordVolume["secretName"]!.GetValue<string>());
        var item = passwordVolume["items"]!.AsArray().Single(i => i!["key"]!.GetValue<string>() == "passwd")!;
        Assert.Equal($"{passwordMount["mountPath"]!.GetValue<string>()}/{item["path"]!.GetValue<string>()}", passwordFile);
        Assert.Equal("/home/streamspace", mounts["home"]["mountPath"]!.GetValue<string>());
        Assert.Equal($"home-{safeUser}", volumes["home"]["persistentVolumeClaim"]!["claimName"]!.GetValue<string>());

        var claim = Kube.Get("persistentvolumeclaims", Ns, $"home-{safeUser}")!;
        Assert.Equal("fast-ssd", claim["spec"]!["storageClassName"]!.GetValue<string>());
        Assert.Equal("2Gi", claim["spec"]!["resources"]!["requests"]!["storage"]!.GetValue<string>());
        Assert.Null(claim["metadata"]!["ownerReferences"]);

        var secret = await SecretAsync(id);
        Assert.Equal(deployment["metadata"]!["uid"]!.GetValue<string>(), secret["metadata"]!["ownerReferences"]![0]!["uid"]!.GetValue<string>());
        // Two passwords: the full one the tunnel answers with, then the view-only one for shared viewers, different.
        var passwords = SecretPasswordFile(secret, item["key"]!.GetValue<string>());
        Assert.Equal(16, passwords.Length);
        Assert.NotEqual(VncPasswordFile.Read(passwords), VncPasswordFile.ReadViewOnly(passwords));

        var podIp = NextPodAddress();
        await fixture.Kubelet.MarkReadyAsync(id, podIp);
        var running = await user.WaitForStateAsync(id, SessionState.Running);
        Assert.Equal("kubernetes", running.Platform);
        Assert.Equal(podIp, running.PlatformMetadata.GetProperty("pod_ip").GetString());
        Assert.Equal(pod["metadata"]!["name"]!.GetValue<string>(), running.PlatformMetadata.GetProperty("pod").GetString());
    }

    [Fact]
    public async Task An_image_pull_failure_fails_the_session_with_the_kubelets_message()
    {
        using var user = await fixture.Api.NewUserClientAsync();
        var id = (await user.LaunchAsync()).Id;
        await fixture.Kubelet.FailImagePullAsync(id, "Back-off pulling image \"ghcr.io/streamspace-dev/streamspace-session-xterm:0.1.0\"");

        var failed = await user.WaitForStateAsync(id, SessionState.Failed);
        Assert.Equal("image pull failed: Back-off pulling image \"ghcr.io/streamspace-dev/streamspace-session-xterm:0.1.0\"",
            failed.FailureReason);
        await Eventually.TrueAsync(() => Task.FromResult(Kube.Get("deployments", Ns, $"session-{id}") is null), TimeSpan.FromSeconds(10),
            "the failed session's Deployment to be deleted");
    }

    [Fact]
    public async Task A_crash_loop_fails_the_session_with_the_last_termination_message()
    {
        using var user = await fixture.Api.NewUserClientAsync();
        var id = (await user.LaunchAsync()).Id;
        await fixture.Kubelet.CrashLoopAsync(id, "Xvnc: fatal error: cannot bind to port 5900");

        var failed = await user.WaitForStateAsync(id, SessionState.Failed);
        Assert.Equal("the session crashed: Xvnc: fatal error: cannot bind to port 5900", failed.FailureReason);
    }

    [Fact]
    public async Task An_unschedulable_session_waits_for_resources_then_fails_at_the_start_timeout()
    {
        // The one test of the start timeout: short, and the reason it waited with is part of the failure's reason, so
        // no intermediate state has to be caught before the timeout.
        await fixture.RestartAgentAsync(new Dictionary<string, string?> { ["SESSION_START_TIMEOUT"] = "3s" });
        try
        {
            using var user = await fixture.Api.NewUserClientAsync();
            var id = (await user.LaunchAsync()).Id;
            const string message = "0/3 nodes are available: 3 Insufficient memory.";
            await fixture.Kubelet.MarkUnschedulableAsync(id, message);

            var failed = await user.WaitForStateAsync(id, SessionState.Failed);
            Assert.Equal($"waiting for resources: {message} (gave up after 3s)", failed.FailureReason);
            await Eventually.TrueAsync(() => Task.FromResult(Kube.Get("deployments", Ns, $"session-{id}") is null), TimeSpan.FromSeconds(10),
                "the failed session's Deployment to be deleted");
        }
        finally
        {
            await fixture.RestartAgentAsync();
        }
    }

    [Fact]
    public async Task Hibernate_scales_the_deployment_to_zero_and_wake_scales_it_to_one()
    {
        using var user = await fixture.Api.NewUserClientAsync();
        var id = await RunningSessionAsync(user);

        Assert.Equal(HttpStatusCode.Accepted, (await user.PostAsync($"/api/v1/sessions/{id}/hibernate", null)).StatusCode);
        await user.WaitForStateAsync(id, SessionState.Hibernated);
        Assert.Equal(0, Kube.Get("deployments", Ns, $"session-{id}")!["spec"]!["replicas"]!.GetValue<int>());
        await GoneAsync("pods", $"session-id={id}");
        Assert.NotNull(Kube.Get("secrets", Ns, $"session-{id}-vnc"));

        Assert.Equal(HttpStatusCode.Accepted, (await user.PostAsync($"/api/v1/sessions/{id}/wake", null)).StatusCode);
        await Eventually.TrueAsync(() => Task.FromResult(Kube.Get("deployments", Ns, $"session-{id}")!["spec"]!["replicas"]!.GetValue<int>() == 1),
            TimeSpan.FromSeconds(10), "the Deployment to scale to 1");
        var podIp = NextPodAddress();
        await fixture.Kubelet.MarkReadyAsync(id, podIp);
        var running = await user.WaitForStateAsync(id, SessionState.Running);
        Assert.Equal(podIp, running.PlatformMetadata.GetProperty("pod_ip").GetString());
    }

    [Fact]
    public async Task Stop_deletes_the_deployment_and_its_secret_and_keeps_the_home_volume()
    {
        var username = "keeper-" + Guid.NewGuid().ToString("N")[..6];
        using var user = await fixture.Api.NewUserClientAsync(username);
        var id = await RunningSessionAsync(user);

        Assert.Equal(HttpStatusCode.Accepted, (await user.DeleteAsync($"/api/v1/sessions/{id}")).StatusCode);
        await user.WaitForStateAsync(id, SessionState.Stopped);
        await GoneAsync("deployments", $"session-id={id}");
        await GoneAsync("secrets", $"session-id={id}");
        await GoneAsync("pods", $"session-id={id}");
        var claim = Assert.Single(Kube.List("persistentvolumeclaims", Ns, $"streamspace.io/user={username}"));

        // The next session of the same user mounts the same home.
        var next = await RunningSessionAsync(user);
        var volumes = Kube.Get("deployments", Ns, $"session-{next}")!["spec"]!["template"]!["spec"]!["volumes"]!;
        var home = Assert.Single(volumes.AsArray(), v => v!["persistentVolumeClaim"] is not null)!;
        Assert.Equal(claim["metadata"]!["name"]!.GetValue<string>(), home["persistentVolumeClaim"]!["claimName"]!.GetValue<string>());
        Assert.Single(Kube.List("persistentvolumeclaims", Ns, $"streamspace.io/user={username}"));
    }

    [Fact]
    public async Task A_session_with_no_input_for_its_idle_timeout_hibernates_by_scaling_to_zero()
    {
        using var admin = await fixture.Api.AdminClientAsync();
        var created = await admin.PostAsJsonAsync("/api/v1/templates",
            new { name = "k8s-quick-idle", display_name = "Idles quickly", image = "example/session:1", idle_timeout = "2s" });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);

        var id = (await admin.LaunchAsync("k8s-quick-idle")).Id;
        await fixture.Kubelet.MarkReadyAsync(id, NextPodAddress());
        // Running lasts only the idle timeout, which a poll on a busy machine can miss: the audit log shows it ran.
        await admin.WaitForStateAsync(id, SessionState.Hibernated);
        var changes = await admin.StateChangesAsync(id);
        Assert.Equal([SessionState.Starting, SessionState.Running], changes[..2]);
        Assert.Equal(SessionState.Hibernated, changes[^1]);
        Assert.Equal(0, Kube.Get("deployments", Ns, $"session-{id}")!["spec"]!["replicas"]!.GetValue<int>());
    }

    [Fact]
    public async Task A_secret_ref_env_entry_reaches_the_pod_as_a_secret_key_ref_and_a_plain_one_as_its_value()
    {
        using var admin = await fixture.Api.AdminClientAsync();
        await admin.CreateTemplateWithSecretEnvAsync("k8s-secret-env", "Secret env");

        var id = (await admin.LaunchAsync("k8s-secret-env")).Id;
        await fixture.Kubelet.PodAsync(id);
        var env = Kube.Get("deployments", Ns, $"session-{id}")!["spec"]!["template"]!["spec"]!["containers"]![0]!["env"]!.AsArray();
        Assert.Equal("hello", env.Single(e => e!["name"]!.GetValue<string>() == "GREETING")!["value"]!.GetValue<string>());
        var secret = env.Single(e => e!["name"]!.GetValue<string>() == "DB_PASSWORD")!;
        Assert.Null(secret["value"]);
        Assert.Equal("db-creds", secret["valueFrom"]!["secretKeyRef"]!["name"]!.GetValue<string>());
        Assert.Equal("password", secret["valueFrom"]!["secretKeyRef"]!["key"]!.GetValue<string>());
    }

    [Fact]
    public async Task The_templates_clipboard_directions_reach_the_session_images_xvnc_settings()
    {
        using var admin = await fixture.Api.AdminClientAsync();
        var created = await admin.PostAsJsonAsync("/api/v1/templates",
            new { name = "k8s-no-copy-out", display_name = "No copying out", image = "example/session:1", clipboard_to_browser = false });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);

        var id = (await admin.LaunchAsync("k8s-no-copy-out")).Id;
        await fixture.Kubelet.PodAsync(id);
        var env = Kube.Get("deployments", Ns, $"session-{id}")!["spec"]!["template"]!["spec"]!["containers"]![0]!["env"]!.AsArray();
        // session.sh passes them to Xvnc as -SendCutText and -AcceptCutText.
        Assert.Equal("0", env.Single(e => e!["name"]!.GetValue<string>() == "VNC_SEND_CUT_TEXT")!["value"]!.GetValue<string>());
        Assert.Equal("1", env.Single(e => e!["name"]!.GetValue<string>() == "VNC_ACCEPT_CUT_TEXT")!["value"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_repeated_start_makes_one_deployment_and_stopping_a_missing_session_succeeds()
    {
        await StartTwiceAndStopTwiceAsync();
        Assert.Equal(SessionState.Stopped, (await fixture.Agent.Platform.StopAsync("sess-neverstarted", CancellationToken.None)).State);
    }

    [Fact]
    public async Task Agent_restart_rediscovers_sessions_and_cleans_orphans()
    {
        using var user = await fixture.Api.NewUserClientAsync();
        var owned = await RunningSessionAsync(user);
        // A session Deployment that no session owns: left behind by a session deleted while its agent was away.
        var orphan = "sess-orphan-" + Guid.NewGuid().ToString("N")[..8];
        Kube.Put("deployments", Ns, OrphanDeployment(orphan));
        await fixture.Kubelet.PodAsync(orphan);

        await fixture.RestartAgentAsync(new Dictionary<string, string?> { ["ORPHAN_GRACE_PERIOD"] = "2s" });
        try
        {
            Assert.Contains(await fixture.Agent.Platform.ListSessionsAsync(CancellationToken.None), s => s.SessionId == orphan);
            await Eventually.TrueAsync(() => Task.FromResult(Kube.Get("deployments", Ns, $"session-{orphan}") is null), TimeSpan.FromSeconds(20),
                "the orphaned Deployment to be deleted after its grace period");
            await GoneAsync("pods", $"session-id={orphan}");
            Assert.DoesNotContain(await fixture.Agent.Platform.ListSessionsAsync(CancellationToken.None), s => s.SessionId == orphan);

            // The owned session was rediscovered and left alone.
            Assert.NotNull(Kube.Get("deployments", Ns, $"session-{owned}"));
            Assert.Equal(SessionState.Running, (await fixture.Agent.Platform.ListSessionsAsync(CancellationToken.None)).Single(s => s.SessionId == owned).State);
            Assert.Equal(SessionState.Running, (await user.WaitForStateAsync(owned, SessionState.Running)).State);
        }
        finally
        {
            await fixture.RestartAgentAsync();
        }
    }

    [Fact]
    public async Task A_restarted_agent_rediscovers_its_sessions_and_a_session_whose_deployment_went_is_failed()
    {
        using var user = await fixture.Api.NewUserClientAsync();
        var kept = await RunningSessionAsync(user);
        var hibernated = await RunningSessionAsync(user);
        var lost = await RunningSessionAsync(user);
        Assert.Equal(HttpStatusCode.Accepted, (await user.PostAsync($"/api/v1/sessions/{hibernated}/hibernate", null)).StatusCode);
        await user.WaitForStateAsync(hibernated, SessionState.Hibernated);
        var podIp = (await user.WaitForStateAsync(kept, SessionState.Running)).PlatformMetadata.GetProperty("pod_ip").GetString();

        await fixture.Agent.DisposeAsync();
        // While the agent is down, someone deletes a session's Deployment by hand.
        Assert.True(Kube.Remove("deployments", Ns, $"session-{lost}"));
        await fixture.RestartAgentAsync();

        var listed = await fixture.Agent.Platform.ListSessionsAsync(CancellationToken.None);
        Assert.Equal(SessionState.Running, listed.Single(s => s.SessionId == kept).State);
        Assert.Equal(SessionState.Hibernated, listed.Single(s => s.SessionId == hibernated).State);
        Assert.DoesNotContain(listed, s => s.SessionId == lost);
        Assert.Equal(podIp, (await fixture.Agent.Platform.FindVncAsync(kept, CancellationToken.None))!.Host);

        Assert.Equal("session pod missing", (await user.WaitForStateAsync(lost, SessionState.Failed)).FailureReason);
        Assert.Equal(SessionState.Running, (await user.WaitForStateAsync(kept, SessionState.Running)).State);
        Assert.Equal(SessionState.Hibernated, (await user.WaitForStateAsync(hibernated, SessionState.Hibernated)).State);
    }

    [Fact]
    public async Task The_vnc_tunnel_reaches_a_real_xvnc_at_the_pod_ip_with_the_secrets_password()
    {
        // As the chart's agent inside the cluster runs; this one is outside, so it is told.
        await fixture.RestartAgentAsync(new Dictionary<string, string?> { ["SESSION_TUNNEL"] = "podip" });
        try
        {
            Assert.Equal(SessionTunnel.PodIp, fixture.Agent.Platform.Tunnel);
            var forwardsBefore = Kube.Calls.Count(c => c.Resource == "pods/portforward");
            await RfbHandshakeThroughTheTunnelAsync();
            Assert.Equal(forwardsBefore, Kube.Calls.Count(c => c.Resource == "pods/portforward"));
        }
        finally
        {
            await fixture.RestartAgentAsync();
        }
    }

    [Fact]
    public async Task Outside_the_cluster_the_vnc_tunnel_reaches_a_real_xvnc_through_pods_portforward()
    {
        // KUBECONFIG and no in-cluster service account: the agent cannot dial pod IPs, so auto picks the API server's port-forward.
        Assert.Equal(SessionTunnel.PortForward, fixture.Agent.Platform.Tunnel);
        var forwardsBefore = Kube.Calls.Count(c => c == new KubernetesCall("create", "", "pods/portforward"));
        await RfbHandshakeThroughTheTunnelAsync();
        Assert.True(Kube.Calls.Count(c => c == new KubernetesCall("create", "", "pods/portforward")) > forwardsBefore, "the tunnel did not use pods/portforward");
    }

    [Fact]
    public async Task A_port_forward_to_a_pod_where_nothing_listens_names_the_api_servers_error()
    {
        Assert.Equal(SessionTunnel.PortForward, fixture.Agent.Platform.Tunnel);
        using var user = await fixture.Api.NewUserClientAsync();
        var id = await RunningSessionAsync(user);

        var endpoint = await fixture.Agent.Platform.FindVncAsync(id, CancellationToken.None);
        await using var stream = await endpoint!.OpenAsync(CancellationToken.None);
        var error = await Assert.ThrowsAsync<IOException>(async () => await stream.ReadExactlyAsync(new byte[12]));
        Assert.Contains("error forwarding port 5900 to pod", error.Message);
    }

    private async Task RfbHandshakeThroughTheTunnelAsync()
    {
        using var user = await fixture.Api.NewUserClientAsync();
        var id = (await user.LaunchAsync()).Id;
        await fixture.Kubelet.PodAsync(id);
        var podIp = NextPodAddress();
        await using var xvnc = await SimulatedSessionPod.StartAsync(podIp, 5900, SecretPasswordFile(await SecretAsync(id)), id);
        await fixture.Kubelet.MarkReadyAsync(id, podIp);
        await user.WaitForStateAsync(id, SessionState.Running);
        await AssertViewerReachesDesktopAsync(user, id, id);
    }

    /// <summary>A viewer connects through the API and the agent's tunnel, authenticates, and sees the desktop of that name.</summary>
    private async Task AssertViewerReachesDesktopAsync(HttpClient user, string id, string desktopName)
    {
        using var viewer = await RfbViewer.ConnectAsync(fixture.Api.BaseAddress, await user.ConnectUrlAsync(id));
        var desktop = await viewer.HandshakeAsync();
        Assert.Equal(desktopName, desktop.Name);
        var (rectangles, _, _) = await viewer.RequestFullUpdateAsync(desktop);
        Assert.True(rectangles > 0);
    }

    [Fact]
    public async Task After_its_watches_were_cut_off_and_the_history_compacted_the_agent_lists_again_and_reports_what_changed_meanwhile()
    {
        using var user = await fixture.Api.NewUserClientAsync();
        var waiting = (await user.LaunchAsync()).Id;
        await fixture.Kubelet.PodAsync(waiting);
        var crashing = await RunningSessionAsync(user);
        var expiredBefore = Kube.ExpiredWatches;

        // No watch sees these changes, and the history that held them is gone: only a new list can tell the agent.
        Kube.Partition();
        var podIp = NextPodAddress();
        try
        {
            await fixture.Kubelet.MarkReadyAsync(waiting, podIp);
            await fixture.Kubelet.CrashLoopAsync(crashing, "Xvnc: lost its display");
        }
        finally
        {
            Kube.HealAndCompact();
        }

        var running = await user.WaitForStateAsync(waiting, SessionState.Running);
        Assert.Equal(podIp, running.PlatformMetadata.GetProperty("pod_ip").GetString());
        var failed = await user.WaitForStateAsync(crashing, SessionState.Failed);
        Assert.Equal("the session crashed: Xvnc: lost its display", failed.FailureReason);
        Assert.True(Kube.ExpiredWatches > expiredBefore, "no watch was answered 410 Gone");

        // And it keeps watching from the new list: a later change arrives as it happens.
        var later = (await user.LaunchAsync()).Id;
        await fixture.Kubelet.MarkReadyAsync(later, NextPodAddress());
        await user.WaitForStateAsync(later, SessionState.Running);
    }

    [Fact]
    public async Task Waking_a_session_whose_deployment_was_deleted_while_its_old_secret_is_still_being_deleted_reaches_the_desktop()
    {
        using var user = await fixture.Api.NewUserClientAsync();
        var id = await RunningSessionAsync(user);
        Assert.Equal(HttpStatusCode.Accepted, (await user.PostAsync($"/api/v1/sessions/{id}/hibernate", null)).StatusCode);
        await user.WaitForStateAsync(id, SessionState.Hibernated);

        // A finalizer (a backup tool's, say) holds the old Secret while an operator deletes the hibernated session's Deployment.
        var secretName = $"session-{id}-vnc";
        var oldSecret = (await SecretAsync(id))["metadata"]!["uid"]!.GetValue<string>();
        Assert.True(Kube.Update("secrets", Ns, secretName, s => s["metadata"]!["finalizers"] = new JsonArray("backup.example.com/hold")));
        Assert.True(Kube.Remove("deployments", Ns, $"session-{id}"));
        await Eventually.TrueAsync(() => Task.FromResult(Kube.Get("secrets", Ns, secretName)?["metadata"]!["deletionTimestamp"] is not null),
            TimeSpan.FromSeconds(10), "the old Secret to be being deleted");

        Assert.Equal(HttpStatusCode.Accepted, (await user.PostAsync($"/api/v1/sessions/{id}/wake", null)).StatusCode);
        await fixture.Kubelet.PodAsync(id);
        Assert.True(Kube.Update("secrets", Ns, secretName, s => s["metadata"]!["finalizers"] = null));

        var secret = await Eventually.ValueAsync(() => Task.FromResult(Kube.Get("secrets", Ns, secretName) is { } s
            && s["metadata"]!["uid"]!.GetValue<string>() != oldSecret ? s : null), TimeSpan.FromSeconds(20), "the new Deployment's Secret");
        Assert.Equal(Kube.Get("deployments", Ns, $"session-{id}")!["metadata"]!["uid"]!.GetValue<string>(),
            secret["metadata"]!["ownerReferences"]![0]!["uid"]!.GetValue<string>());
        var podIp = NextPodAddress();
        await using var xvnc = await SimulatedSessionPod.StartAsync(podIp, 5900, SecretPasswordFile(secret), "woken");
        await fixture.Kubelet.MarkReadyAsync(id, podIp);
        await user.WaitForStateAsync(id, SessionState.Running);
        await AssertViewerReachesDesktopAsync(user, id, "woken");
    }

    [Fact]
    public async Task What_a_stopped_sessions_pod_reports_before_the_garbage_collector_takes_it_does_not_bring_the_session_back()
    {
        using var user = await fixture.Api.NewUserClientAsync();
        var id = await RunningSessionAsync(user);
        var pod = (await fixture.Kubelet.PodAsync(id))["metadata"]!["name"]!.GetValue<string>();
        var collection = Kube.CollectionDelay;
        Kube.CollectionDelay = TimeSpan.FromMinutes(5);
        try
        {
            Assert.Equal(HttpStatusCode.Accepted, (await user.DeleteAsync($"/api/v1/sessions/{id}")).StatusCode);
            await user.WaitForStateAsync(id, SessionState.Stopped);
            await GoneAsync("deployments", $"session-id={id}");

            // The kubelet still reports the pod, Ready; then another session starts, whose pod comes later in the same watch.
            Assert.True(Kube.Update("pods", Ns, pod, p => p["metadata"]!["annotations"]!["example.com/touched"] = "by the kubelet"));
            Kube.CollectionDelay = collection;
            await RunningSessionAsync(user);
        }
        finally
        {
            Kube.CollectionDelay = collection;
        }

        Assert.Null(await fixture.Agent.Platform.FindVncAsync(id, CancellationToken.None));
        Assert.DoesNotContain(await fixture.Agent.Platform.ListSessionsAsync(CancellationToken.None), s => s.SessionId == id);
        Assert.Equal(SessionState.Stopped, (await user.WaitForStateAsync(id, SessionState.Stopped)).State);
    }

    [Fact]
    public async Task A_pod_whose_container_cannot_be_configured_waits_with_the_kubelets_reason()
    {
        using var user = await fixture.Api.NewUserClientAsync();
        var id = (await user.LaunchAsync()).Id;
        await fixture.Kubelet.FailContainerConfigAsync(id, "secret \"db-creds\" not found");
        await WaitForReasonAsync(user, id, SessionState.Starting, "invalid container configuration: secret \"db-creds\" not found");
    }

    [Fact]
    public async Task While_a_replaced_pod_terminates_beside_its_successor_the_session_and_its_tunnel_follow_the_successor()
    {
        using var user = await fixture.Api.NewUserClientAsync();
        var id = (await user.LaunchAsync()).Id;
        var oldPod = (await fixture.Kubelet.PodAsync(id))["metadata"]!["name"]!.GetValue<string>();
        var password = SecretPasswordFile(await SecretAsync(id));
        var (oldIp, newIp) = (NextPodAddress(), NextPodAddress());
        await using var oldXvnc = await SimulatedSessionPod.StartAsync(oldIp, 5900, password, "old pod");
        await fixture.Kubelet.MarkReadyAsync(id, oldIp);
        Assert.Equal(oldIp, (await user.WaitForStateAsync(id, SessionState.Running)).PlatformMetadata.GetProperty("pod_ip").GetString());

        // The pod is evicted with a long grace period; its ReplicaSet replaces it at once, and the old one still reports Ready.
        Assert.True(Kube.Remove("pods", Ns, oldPod, TimeSpan.FromMinutes(5)));
        await fixture.Kubelet.PodAsync(id, not: oldPod);
        Assert.Equal(2, Kube.List("pods", Ns, $"session-id={id}").Count);
        Assert.True(Kube.Update("pods", Ns, oldPod, p => p["metadata"]!["annotations"]!["example.com/touched"] = "by the kubelet"));

        // The old pod's change comes before the new pod's readiness in the watch, so once the tunnel's address is the
        // new pod's, nothing about the old pod can move it back.
        await using var newXvnc = await SimulatedSessionPod.StartAsync(newIp, 5900, password, "new pod");
        await fixture.Kubelet.MarkReadyAsync(id, newIp);
        await Eventually.TrueAsync(async () => (await fixture.Agent.Platform.FindVncAsync(id, CancellationToken.None))?.Host == newIp,
            TimeSpan.FromSeconds(20), "the tunnel to lead to the new pod");
        // What the user and the admin see follows too: still running, now at the new pod's address.
        await Eventually.TrueAsync(async () =>
        {
            var session = await user.WaitForStateAsync(id, SessionState.Running);
            return session.PlatformMetadata.GetProperty("pod_ip").GetString() == newIp;
        }, TimeSpan.FromSeconds(20), "the session to show the new pod's address");
        Assert.NotNull(Kube.Get("pods", Ns, oldPod));
        await AssertViewerReachesDesktopAsync(user, id, "new pod");
    }

    [Fact]
    public async Task A_pending_home_volume_reports_its_claims_event_then_the_session_runs_once_it_binds()
    {
        var username = "pending-" + Guid.NewGuid().ToString("N")[..6];
        using var user = await fixture.Api.NewUserClientAsync(username);
        var id = (await user.LaunchAsync()).Id;
        await fixture.Kubelet.PodAsync(id);
        var claim = Assert.Single(Kube.List("persistentvolumeclaims", Ns, $"streamspace.io/user={username}"))["metadata"]!["name"]!.GetValue<string>();
        const string message = "storageclass.storage.k8s.io \"fast-ssd\" not found";

        Assert.True(Kube.Update("persistentvolumeclaims", Ns, claim, c => c["status"] = new JsonObject { ["phase"] = "Pending" }));
        Kube.Put("events", Ns, Event("PersistentVolumeClaim", claim, "Warning", "ProvisioningFailed", message));
        await WaitForReasonAsync(user, id, SessionState.Starting, $"home volume pending: {message}");

        Assert.True(Kube.Update("persistentvolumeclaims", Ns, claim, c => c["status"] = new JsonObject { ["phase"] = "Bound" }));
        await fixture.Kubelet.MarkReadyAsync(id, NextPodAddress());
        await user.WaitForStateAsync(id, SessionState.Running);
    }

    [Fact]
    public async Task A_pod_whose_status_says_nothing_yet_waits_with_the_reason_of_its_newest_warning_event()
    {
        using var user = await fixture.Api.NewUserClientAsync();
        var id = (await user.LaunchAsync()).Id;
        var pod = (await fixture.Kubelet.PodAsync(id))["metadata"]!["name"]!.GetValue<string>();
        const string message = "0/3 nodes are available: 3 node(s) had untolerated taint {gpu: true}.";

        Kube.Put("events", Ns, Event("Pod", pod, "Warning", "FailedScheduling", message));
        await WaitForReasonAsync(user, id, SessionState.Starting, $"waiting for resources: {message}");
    }

    [Fact]
    public async Task An_image_pull_failure_shows_in_the_agents_image_pull_check_with_its_template()
    {
        using var admin = await fixture.Api.AdminClientAsync();
        var created = await admin.PostAsJsonAsync("/api/v1/templates",
            new { name = "k8s-missing-image", display_name = "Missing image", image = "registry.example/missing:404" });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var id = (await admin.LaunchAsync("k8s-missing-image")).Id;
        const string message = "Back-off pulling image \"registry.example/missing:404\"";
        await fixture.Kubelet.FailImagePullAsync(id, message);
        await admin.WaitForStateAsync(id, SessionState.Failed);

        var check = Assert.Single(await fixture.Agent.Platform.CheckAsync(CancellationToken.None), c => c.Id == "kubernetes.image_pull");
        Assert.Equal("warn", check.Status);
        Assert.Contains($"registry.example/missing:404 (template k8s-missing-image): {message}", check.Evidence);
        Assert.Contains("SESSION_IMAGE_PULL_SECRETS", check.Fix);

        // The admin's diagnostics report shows it under the agent's name.
        await Eventually.TrueAsync(async () =>
        {
            var report = await (await admin.GetAsync("/api/v1/admin/diagnostics")).AssertJsonAsync(HttpStatusCode.OK);
            return report.GetProperty("checks").EnumerateArray().Any(c => c.GetProperty("id").GetString() == $"kubernetes.image_pull:{KubernetesFixture.AgentId}"
                && c.GetProperty("status").GetString() == "warn" && c.GetProperty("evidence").GetString()!.Contains("registry.example/missing:404", StringComparison.Ordinal));
        }, TimeSpan.FromSeconds(15), "the image pull check in the diagnostics report");
    }

    [Fact]
    public async Task The_agent_role_in_the_chart_grants_exactly_the_calls_the_agent_makes()
    {
        // One whole lifecycle, so this test does not depend on the others having run first.
        using var user = await fixture.Api.NewUserClientAsync();
        var id = await RunningSessionAsync(user);
        var endpoint = await fixture.Agent.Platform.FindVncAsync(id, CancellationToken.None);
        await (await endpoint!.OpenAsync(CancellationToken.None)).DisposeAsync();
        await fixture.Agent.Platform.CheckAsync(CancellationToken.None);
        await StartTwiceAndStopTwiceAsync();
        Assert.Equal(HttpStatusCode.Accepted, (await user.PostAsync($"/api/v1/sessions/{id}/hibernate", null)).StatusCode);
        await user.WaitForStateAsync(id, SessionState.Hibernated);
        Assert.Equal(HttpStatusCode.Accepted, (await user.DeleteAsync($"/api/v1/sessions/{id}")).StatusCode);
        await user.WaitForStateAsync(id, SessionState.Stopped);
        await fixture.Agent.Platform.ListSessionsAsync(CancellationToken.None);

        // The case whose storage class is this agent's (fast-ssd): the ClusterRole grants get on that class by name.
        var chart = await RenderedChart.LoadAsync(RenderedChart.NetworkPolicyAndIngressCase);
        var grants = chart.AgentRoleGrants();
        var calls = Kube.Calls.Select(c => (c.ApiGroup, c.Resource, c.Verb)).ToHashSet();
        // Every authenticated account may create SelfSubjectAccessReviews (Kubernetes' system:basic-user), so no Role grants it.
        calls.RemoveWhere(c => c.Resource == "selfsubjectaccessreviews");
        var used = calls.Where(c => c.Resource != "storageclasses").ToHashSet();
        Assert.True(used.IsSubsetOf(grants), $"the agent made calls the chart's Role does not grant: {string.Join(", ", used.Except(grants))}");
        Assert.True(grants.IsSubsetOf(used), $"the chart's Role grants what the agent never uses: {string.Join(", ", grants.Except(used))}");

        var clusterGrants = Assert.Single(chart.All<V1ClusterRole>()).Rules
            .SelectMany(rule => rule.Verbs.Select(verb => (Assert.Single(rule.ApiGroups), Assert.Single(rule.Resources), verb))).ToHashSet();
        Assert.Equal(clusterGrants, calls.Where(c => c.Resource == "storageclasses").ToHashSet());
        Assert.Equal(["fast-ssd"], Assert.Single(Assert.Single(chart.All<V1ClusterRole>()).Rules).ResourceNames);

        // And the kubernetes.rbac check asks about exactly what the Role grants.
        Assert.Equal(grants, KubernetesChecks.Required.Select(p => (p.Group, p.Subresource is null ? p.Resource : $"{p.Resource}/{p.Subresource}", p.Verb)).ToHashSet());
    }

    private async Task StartTwiceAndStopTwiceAsync()
    {
        var platform = fixture.Agent.Platform;
        var payload = new SessionCommandPayload("sess-" + Guid.NewGuid().ToString("N")[..12], Guid.NewGuid(), "twice", Templates.Xterm with { Image = "example/session:1" });

        Assert.Equal(SessionState.Starting, (await platform.StartAsync(payload, CancellationToken.None)).State);
        Assert.Equal(SessionState.Starting, (await platform.StartAsync(payload, CancellationToken.None)).State);
        Assert.Single(Kube.List("deployments", Ns, $"session-id={payload.SessionId}"));
        Assert.Single(Kube.List("secrets", Ns, $"session-id={payload.SessionId}"));

        Assert.Equal(SessionState.Stopped, (await platform.StopAsync(payload.SessionId, CancellationToken.None)).State);
        Assert.Equal(SessionState.Stopped, (await platform.StopAsync(payload.SessionId, CancellationToken.None)).State);
        await GoneAsync("deployments", $"session-id={payload.SessionId}");
        await GoneAsync("secrets", $"session-id={payload.SessionId}");
    }

    /// <summary>Deletion takes a while in a cluster (grace periods, the garbage collector): waits until nothing matches.</summary>
    private Task GoneAsync(string resource, string selector) =>
        Eventually.TrueAsync(() => Task.FromResult(Kube.List(resource, Ns, selector).Count == 0), TimeSpan.FromSeconds(20), $"no {resource} with {selector}");

    private static async Task WaitForReasonAsync(HttpClient user, string id, SessionState state, string reason) =>
        await Eventually.TrueAsync(async () =>
        {
            var session = await (await user.GetAsync($"/api/v1/sessions/{id}")).AssertJsonAsync<SessionResponse>(HttpStatusCode.OK);
            return session.State == state && session.FailureReason == reason;
        }, TimeSpan.FromSeconds(10), $"session {id} to be {state.ToName()} with \"{reason}\"");

    /// <summary>An event as the kubelet, scheduler or volume provisioner records it.</summary>
    private static JsonObject Event(string kind, string name, string type, string reason, string message) => new()
    {
        ["metadata"] = new JsonObject { ["name"] = $"{name}.{Guid.NewGuid():N}"[..Math.Min(63, name.Length + 17)] },
        ["involvedObject"] = new JsonObject { ["kind"] = kind, ["name"] = name, ["namespace"] = Ns },
        ["type"] = type, ["reason"] = reason, ["message"] = message,
        ["lastTimestamp"] = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ"),
    };

    /// <summary>A session Deployment as the agent labels them, made by hand so that no session in the database owns it.</summary>
    private static JsonObject OrphanDeployment(string sessionId)
    {
        var labels = new JsonObject { ["app"] = "session", ["session-id"] = sessionId, ["app.kubernetes.io/managed-by"] = "streamspace" };
        return new JsonObject
        {
            ["metadata"] = new JsonObject { ["name"] = $"session-{sessionId}", ["labels"] = labels.DeepClone() },
            ["spec"] = new JsonObject
            {
                ["replicas"] = 1,
                ["selector"] = new JsonObject { ["matchLabels"] = new JsonObject { ["app"] = "session", ["session-id"] = sessionId } },
                ["template"] = new JsonObject
                {
                    ["metadata"] = new JsonObject { ["labels"] = labels.DeepClone() },
                    ["spec"] = new JsonObject { ["containers"] = new JsonArray(new JsonObject { ["name"] = "session", ["image"] = "example/session:1" }) },
                },
            },
        };
    }

    private async Task<string> RunningSessionAsync(HttpClient user)
    {
        var id = (await user.LaunchAsync()).Id;
        await fixture.Kubelet.MarkReadyAsync(id, NextPodAddress());
        await user.WaitForStateAsync(id, SessionState.Running);
        return id;
    }

    private async Task<JsonObject> SecretAsync(string id)
    {
        JsonObject? secret = null;
        await Eventually.TrueAsync(() => Task.FromResult((secret = Kube.Get("secrets", Ns, $"session-{id}-vnc")) is not null),
            TimeSpan.FromSeconds(10), $"the Secret of session {id}");
        return secret!;
    }

    /// <summary>The TigerVNC password file in a session's Secret, as the pod's Xvnc reads it.</summary>
    private static byte[] SecretPasswordFile(JsonObject secret, string key = "passwd") =>
        Convert.FromBase64String(secret["data"]![key]!.GetValue<string>());

    /// <summary>A unique loopback address per simulated pod, so that every pod's VNC port can be 5900.</summary>
    private static string NextPodAddress() => $"127.0.{Environment.ProcessId % 200 + 20}.{Interlocked.Increment(ref lastPodAddress) % 250 + 2}";
}
