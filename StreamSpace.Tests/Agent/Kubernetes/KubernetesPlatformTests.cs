using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using StreamSpace.Contracts;
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
        var id = (await user.LaunchAsync()).GetProperty("id").GetString()!;
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
        var password = container["env"]!.AsArray().Single(e => e!["name"]!.GetValue<string>() == "VNC_PASSWORD")!;
        Assert.Equal($"session-{id}-vnc", password["valueFrom"]!["secretKeyRef"]!["name"]!.GetValue<string>());
        Assert.Equal("password", password["valueFrom"]!["secretKeyRef"]!["key"]!.GetValue<string>());
        Assert.Equal("/home/streamspace", container["volumeMounts"]![0]!["mountPath"]!.GetValue<string>());
        Assert.Equal($"home-{safeUser}", podSpec["volumes"]![0]!["persistentVolumeClaim"]!["claimName"]!.GetValue<string>());

        var claim = Kube.Get("persistentvolumeclaims", Ns, $"home-{safeUser}")!;
        Assert.Equal("fast-ssd", claim["spec"]!["storageClassName"]!.GetValue<string>());
        Assert.Equal("2Gi", claim["spec"]!["resources"]!["requests"]!["storage"]!.GetValue<string>());
        Assert.Null(claim["metadata"]!["ownerReferences"]);

        var secret = await SecretAsync(id);
        Assert.Equal(deployment["metadata"]!["uid"]!.GetValue<string>(), secret["metadata"]!["ownerReferences"]![0]!["uid"]!.GetValue<string>());
        Assert.Equal(8, SecretPassword(secret).Length);

        var podIp = NextPodAddress();
        await fixture.Kubelet.MarkReadyAsync(id, podIp);
        var running = await user.WaitForStateAsync(id, "running");
        Assert.Equal("kubernetes", running.GetProperty("platform").GetString());
        Assert.Equal(podIp, running.GetProperty("platform_metadata").GetProperty("pod_ip").GetString());
        Assert.Equal(pod["metadata"]!["name"]!.GetValue<string>(), running.GetProperty("platform_metadata").GetProperty("pod").GetString());
    }

    [Fact]
    public async Task An_image_pull_failure_fails_the_session_with_the_kubelets_message()
    {
        using var user = await fixture.Api.NewUserClientAsync();
        var id = (await user.LaunchAsync()).GetProperty("id").GetString()!;
        await fixture.Kubelet.FailImagePullAsync(id, "Back-off pulling image \"ghcr.io/streamspace-dev/streamspace-session-xterm:0.1.0\"");

        var failed = await user.WaitForStateAsync(id, "failed");
        Assert.Equal("image pull failed: Back-off pulling image \"ghcr.io/streamspace-dev/streamspace-session-xterm:0.1.0\"",
            failed.GetProperty("failure_reason").GetString());
        await Eventually.TrueAsync(() => Task.FromResult(Kube.Get("deployments", Ns, $"session-{id}") is null), TimeSpan.FromSeconds(10),
            "the failed session's Deployment to be deleted");
    }

    [Fact]
    public async Task A_crash_loop_fails_the_session_with_the_last_termination_message()
    {
        using var user = await fixture.Api.NewUserClientAsync();
        var id = (await user.LaunchAsync()).GetProperty("id").GetString()!;
        await fixture.Kubelet.CrashLoopAsync(id, "Xvnc: fatal error: cannot bind to port 5900");

        var failed = await user.WaitForStateAsync(id, "failed");
        Assert.Equal("the session crashed: Xvnc: fatal error: cannot bind to port 5900", failed.GetProperty("failure_reason").GetString());
    }

    [Fact]
    public async Task An_unschedulable_session_waits_for_resources_then_fails_at_the_start_timeout()
    {
        using var user = await fixture.Api.NewUserClientAsync();
        var id = (await user.LaunchAsync()).GetProperty("id").GetString()!;
        const string message = "0/3 nodes are available: 3 Insufficient memory.";
        await fixture.Kubelet.MarkUnschedulableAsync(id, message);

        await Eventually.TrueAsync(async () =>
        {
            var session = await (await user.GetAsync($"/api/v1/sessions/{id}")).AssertJsonAsync(HttpStatusCode.OK);
            return session.GetProperty("state").GetString() == "starting"
                && session.GetProperty("failure_reason").ValueKind == JsonValueKind.String
                && session.GetProperty("failure_reason").GetString() == $"waiting for resources: {message}";
        }, TimeSpan.FromSeconds(5), "the session to wait for resources");

        var failed = await user.WaitForStateAsync(id, "failed", TimeSpan.FromSeconds(20));
        Assert.StartsWith($"waiting for resources: {message} (gave up after", failed.GetProperty("failure_reason").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Hibernate_scales_the_deployment_to_zero_and_wake_scales_it_to_one()
    {
        using var user = await fixture.Api.NewUserClientAsync();
        var id = await RunningSessionAsync(user);

        Assert.Equal(HttpStatusCode.Accepted, (await user.PostAsync($"/api/v1/sessions/{id}/hibernate", null)).StatusCode);
        await user.WaitForStateAsync(id, "hibernated");
        Assert.Equal(0, Kube.Get("deployments", Ns, $"session-{id}")!["spec"]!["replicas"]!.GetValue<int>());
        Assert.Empty(Kube.List("pods", Ns, $"session-id={id}"));
        Assert.NotNull(Kube.Get("secrets", Ns, $"session-{id}-vnc"));

        Assert.Equal(HttpStatusCode.Accepted, (await user.PostAsync($"/api/v1/sessions/{id}/wake", null)).StatusCode);
        await Eventually.TrueAsync(() => Task.FromResult(Kube.Get("deployments", Ns, $"session-{id}")!["spec"]!["replicas"]!.GetValue<int>() == 1),
            TimeSpan.FromSeconds(10), "the Deployment to scale to 1");
        var podIp = NextPodAddress();
        await fixture.Kubelet.MarkReadyAsync(id, podIp);
        var running = await user.WaitForStateAsync(id, "running");
        Assert.Equal(podIp, running.GetProperty("platform_metadata").GetProperty("pod_ip").GetString());
    }

    [Fact]
    public async Task Stop_deletes_the_deployment_and_its_secret_and_keeps_the_home_volume()
    {
        var username = "keeper-" + Guid.NewGuid().ToString("N")[..6];
        using var user = await fixture.Api.NewUserClientAsync(username);
        var id = await RunningSessionAsync(user);

        Assert.Equal(HttpStatusCode.Accepted, (await user.DeleteAsync($"/api/v1/sessions/{id}")).StatusCode);
        await user.WaitForStateAsync(id, "stopped");
        Assert.Null(Kube.Get("deployments", Ns, $"session-{id}"));
        Assert.Null(Kube.Get("secrets", Ns, $"session-{id}-vnc"));
        Assert.Empty(Kube.List("pods", Ns, $"session-id={id}"));
        var claim = Assert.Single(Kube.List("persistentvolumeclaims", Ns, $"streamspace.io/user={username}"));

        // The next session of the same user mounts the same home.
        var next = await RunningSessionAsync(user);
        var volumes = Kube.Get("deployments", Ns, $"session-{next}")!["spec"]!["template"]!["spec"]!["volumes"]!;
        Assert.Equal(claim["metadata"]!["name"]!.GetValue<string>(), volumes[0]!["persistentVolumeClaim"]!["claimName"]!.GetValue<string>());
        Assert.Single(Kube.List("persistentvolumeclaims", Ns, $"streamspace.io/user={username}"));
    }

    [Fact]
    public async Task A_session_with_no_input_for_its_idle_timeout_hibernates_by_scaling_to_zero()
    {
        using var admin = await fixture.Api.AdminClientAsync();
        var created = await admin.PostAsJsonAsync("/api/v1/templates",
            new { name = "k8s-quick-idle", display_name = "Idles quickly", image = "example/session:1", idle_timeout = "2s" });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);

        var id = (await admin.LaunchAsync("k8s-quick-idle")).GetProperty("id").GetString()!;
        await fixture.Kubelet.MarkReadyAsync(id, NextPodAddress());
        await admin.WaitForStateAsync(id, "running");
        await admin.WaitForStateAsync(id, "hibernated", TimeSpan.FromSeconds(15));
        Assert.Equal(0, Kube.Get("deployments", Ns, $"session-{id}")!["spec"]!["replicas"]!.GetValue<int>());
    }

    [Fact]
    public async Task A_repeated_start_makes_one_deployment_and_stopping_a_missing_session_succeeds()
    {
        await StartTwiceAndStopTwiceAsync();
        Assert.Equal("stopped", (await fixture.Agent.Platform.StopAsync(
            new SessionCommandPayload("sess-neverstarted", Guid.NewGuid(), "nobody", Templates.Xterm), CancellationToken.None)).State);
    }

    [Fact]
    public async Task A_restarted_agent_rediscovers_its_sessions_and_a_session_whose_deployment_went_is_failed()
    {
        using var user = await fixture.Api.NewUserClientAsync();
        var kept = await RunningSessionAsync(user);
        var hibernated = await RunningSessionAsync(user);
        var lost = await RunningSessionAsync(user);
        Assert.Equal(HttpStatusCode.Accepted, (await user.PostAsync($"/api/v1/sessions/{hibernated}/hibernate", null)).StatusCode);
        await user.WaitForStateAsync(hibernated, "hibernated");
        var podIp = (await user.WaitForStateAsync(kept, "running")).GetProperty("platform_metadata").GetProperty("pod_ip").GetString();

        await fixture.Agent.DisposeAsync();
        // While the agent is down, someone deletes a session's Deployment by hand.
        Assert.True(Kube.Remove("deployments", Ns, $"session-{lost}"));
        await fixture.RestartAgentAsync();

        var listed = await fixture.Agent.Platform.ListSessionsAsync(CancellationToken.None);
        Assert.Equal("running", listed.Single(s => s.SessionId == kept).State);
        Assert.Equal("hibernated", listed.Single(s => s.SessionId == hibernated).State);
        Assert.DoesNotContain(listed, s => s.SessionId == lost);
        Assert.Equal(podIp, (await fixture.Agent.Platform.FindVncAsync(kept, CancellationToken.None))!.Host);

        await user.WaitForStateAsync(lost, "failed");
        Assert.Equal("running", (await user.WaitForStateAsync(kept, "running")).GetProperty("state").GetString());
        Assert.Equal("hibernated", (await user.WaitForStateAsync(hibernated, "hibernated")).GetProperty("state").GetString());
    }

    [Fact]
    public async Task The_vnc_tunnel_reaches_a_real_xvnc_at_the_pod_ip_with_the_secrets_password()
    {
        using var user = await fixture.Api.NewUserClientAsync();
        var id = (await user.LaunchAsync()).GetProperty("id").GetString()!;
        await fixture.Kubelet.PodAsync(id);
        var secret = await SecretAsync(id);
        var podIp = NextPodAddress();
        await using var xvnc = await SimulatedSessionPod.StartAsync(podIp, 5900, SecretPassword(secret), id);
        await fixture.Kubelet.MarkReadyAsync(id, podIp);
        await user.WaitForStateAsync(id, "running");

        using var viewer = await RfbViewer.ConnectAsync(fixture.Api.BaseAddress, await user.ConnectUrlAsync(id));
        var desktop = await viewer.HandshakeAsync();
        Assert.Equal(id, desktop.Name);
        var (rectangles, _, _) = await viewer.RequestFullUpdateAsync(desktop);
        Assert.True(rectangles > 0);
    }

    [Fact]
    public async Task The_agent_role_in_the_chart_grants_exactly_the_calls_the_agent_makes()
    {
        // One whole lifecycle, so this test does not depend on the others having run first.
        using var user = await fixture.Api.NewUserClientAsync();
        var id = await RunningSessionAsync(user);
        Assert.NotNull(await fixture.Agent.Platform.FindVncAsync(id, CancellationToken.None));
        await StartTwiceAndStopTwiceAsync();
        Assert.Equal(HttpStatusCode.Accepted, (await user.PostAsync($"/api/v1/sessions/{id}/hibernate", null)).StatusCode);
        await user.WaitForStateAsync(id, "hibernated");
        Assert.Equal(HttpStatusCode.Accepted, (await user.DeleteAsync($"/api/v1/sessions/{id}")).StatusCode);
        await user.WaitForStateAsync(id, "stopped");
        await fixture.Agent.Platform.ListSessionsAsync(CancellationToken.None);

        var grants = (await RenderedChart.LoadAsync(RenderedChart.DefaultCase)).AgentRoleGrants();
        var used = Kube.Calls.Select(c => (c.ApiGroup, c.Resource, c.Verb)).ToHashSet();
        Assert.True(used.IsSubsetOf(grants), $"the agent made calls the chart's Role does not grant: {string.Join(", ", used.Except(grants))}");
        Assert.True(grants.IsSubsetOf(used), $"the chart's Role grants what the agent never uses: {string.Join(", ", grants.Except(used))}");
    }

    private async Task StartTwiceAndStopTwiceAsync()
    {
        var platform = fixture.Agent.Platform;
        var payload = new SessionCommandPayload("sess-" + Guid.NewGuid().ToString("N")[..12], Guid.NewGuid(), "twice", Templates.Xterm with { Image = "example/session:1" });

        Assert.Equal("starting", (await platform.StartAsync(payload, CancellationToken.None)).State);
        Assert.Equal("starting", (await platform.StartAsync(payload, CancellationToken.None)).State);
        Assert.Single(Kube.List("deployments", Ns, $"session-id={payload.SessionId}"));
        Assert.Single(Kube.List("secrets", Ns, $"session-id={payload.SessionId}"));

        Assert.Equal("stopped", (await platform.StopAsync(payload, CancellationToken.None)).State);
        Assert.Equal("stopped", (await platform.StopAsync(payload, CancellationToken.None)).State);
        Assert.Empty(Kube.List("deployments", Ns, $"session-id={payload.SessionId}"));
        Assert.Empty(Kube.List("secrets", Ns, $"session-id={payload.SessionId}"));
    }

    private async Task<string> RunningSessionAsync(HttpClient user)
    {
        var id = (await user.LaunchAsync()).GetProperty("id").GetString()!;
        await fixture.Kubelet.MarkReadyAsync(id, NextPodAddress());
        await user.WaitForStateAsync(id, "running");
        return id;
    }

    private async Task<JsonObject> SecretAsync(string id)
    {
        JsonObject? secret = null;
        await Eventually.TrueAsync(() => Task.FromResult((secret = Kube.Get("secrets", Ns, $"session-{id}-vnc")) is not null),
            TimeSpan.FromSeconds(10), $"the Secret of session {id}");
        return secret!;
    }

    private static string SecretPassword(JsonObject secret) =>
        System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(secret["data"]!["password"]!.GetValue<string>()));

    /// <summary>A unique loopback address per simulated pod, so that every pod's VNC port can be 5900.</summary>
    private static string NextPodAddress() => $"127.0.{Environment.ProcessId % 200 + 20}.{Interlocked.Increment(ref lastPodAddress) % 250 + 2}";
}
