using Microsoft.Extensions.Hosting;
using System.Text.Json;
using System.Text.RegularExpressions;
using k8s;
using k8s.Models;
using Microsoft.Extensions.Configuration;
using StreamSpace.Agent;
using StreamSpace.Agent.Platforms.Kubernetes;
using StreamSpace.Contracts;
using StreamSpace.Api;
using StreamSpace.Settings;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Chart;

/// <summary>
/// The Helm chart in <c>chart/</c>, rendered by <c>tools/helm-check.sh</c>, held to three things: the troubleshooting
/// guide's contract (names, labels, secrets, policies), the settings the code reads, and the AppHost's published
/// manifest. The lists of names come from the code and the manifest; only the deliberate exceptions are typed here.
/// </summary>
public sealed partial class ChartTests(AspireManifest manifest) : IClassFixture<AspireManifest>
{
    private const string Namespace = RenderedChart.Namespace;
    private const string ApiName = RenderedChart.Release + "-api";
    private const string WebName = RenderedChart.Release + "-ui";
    private const string AgentName = RenderedChart.Release + "-k8s-agent";
    private const string PostgresName = RenderedChart.Release + "-postgres";
    private const string DefaultSessionNamespace = RenderedChart.Release + "-sessions";

    /// <summary>The session namespace of the networkpolicy-ingress case: one the operator created, so the chart does not render it.</summary>
    private const string OperatorSessionNamespace = "streamspace-desktops";

    /// <summary>The chart's Deployments and the AppHost resources and projects they run.</summary>
    private static readonly (string Deployment, string Resource, string Project, Type[] Settings)[] Processes =
    [
        (ApiName, "api", "StreamSpace.Api", [typeof(ApiSettings), typeof(TrustedProxySettings)]),
        (WebName, "web", "StreamSpace.Web", [typeof(StreamSpace.Web.WebSettings), typeof(TrustedProxySettings)]),
        (AgentName, "agent", "StreamSpace.Agent", [typeof(AgentSettings)]),
    ];

    /// <summary>
    /// Set by the chart only so that Kubernetes can expand them: <c>$(POSTGRES_PASSWORD)</c> in the connection string,
    /// <c>$(POD_IP)</c> in REPLICA_ADDRESS.
    /// </summary>
    private static readonly HashSet<string> ExpansionOnly = ["POSTGRES_PASSWORD", "POD_IP"];

    /// <summary>Agent settings the chart's kubernetes agent leaves alone. AGENT_DATA_DIR: the local platform's folder.</summary>
    private static readonly HashSet<string> AgentSettingsNotForKubernetes = ["AGENT_DATA_DIR", "LOCAL_ISOLATION", "LOCAL_UID_RANGE"];

    /// <summary>
    /// Manifest env vars the chart spells differently. HTTP_PORTS → ASPNETCORE_HTTP_PORTS: the same Kestrel setting,
    /// under the name the aspnet base image sets (to 8080), so the chart's value replaces the image's.
    /// </summary>
    private static readonly Dictionary<string, string> RenamedInChart = new() { ["HTTP_PORTS"] = "ASPNETCORE_HTTP_PORTS" };

    private static readonly string[] StandardLabels =
    [
        "app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version",
        "app.kubernetes.io/managed-by", "app.kubernetes.io/component",
    ];

    // ---- The troubleshooting guide's contract ----

    [Fact]
    public async Task The_agent_deployment_dials_the_api_service_hub_and_sets_the_heartbeat_interval()
    {
        var chart = await RenderedChart.LoadAsync(RenderedChart.DefaultCase);
        var agent = chart.Container(AgentName);

        var url = new Uri(Value(agent, "CONTROL_PLANE_URL"));
        Assert.Equal("ws://streamspace-api:8000/agent/ws", url.ToString());
        var api = chart.Single<V1Service>(url.Host);
        Assert.Contains(api.Spec.Ports, p => p.Port == url.Port);
        Assert.Equal(AgentSettings.HubPath, url.AbsolutePath);

        Assert.Equal("30s", Value(agent, "HEARTBEAT_INTERVAL"));
        Assert.Equal("kubernetes", Value(agent, "PLATFORM"));
    }

    [Fact]
    public async Task Services_are_api_on_8000_and_ui_on_8080_and_each_selects_its_own_pods()
    {
        foreach (var chart in await RenderedChart.LoadAllAsync())
        {
            var internalPostgres = chart.Case != RenderedChart.ExternalPostgresCase;
            var expected = new Dictionary<string, (int Port, string Workload)>
            {
                [ApiName] = (8000, ApiName),
                [WebName] = (8080, WebName),
            };
            if (internalPostgres)
            {
                expected[PostgresName] = (5432, PostgresName);
            }

            var services = chart.All<V1Service>().ToDictionary(s => s.Metadata.Name);
            Assert.Equal(expected.Keys.Order(), services.Keys.Order());
            foreach (var (name, (port, workloadName)) in expected)
            {
                var service = services[name];
                var servicePort = Assert.Single(service.Spec.Ports);
                Assert.Equal(port, servicePort.Port);

                // The selector picks exactly the intended pods, and the target port is one they declare.
                var selected = chart.Workloads().Where(w => service.Spec.Selector.All(s => w.PodLabels.TryGetValue(s.Key, out var v) && v == s.Value)).ToList();
                Assert.Equal(workloadName, Assert.Single(selected).Name);
                var containerPort = Assert.Single(chart.Container(workloadName).Ports, p => p.Name == servicePort.TargetPort.Value);
                Assert.Equal(port, containerPort.ContainerPort);
            }

            Assert.Equal(internalPostgres, chart.All<V1StatefulSet>().Any(s => s.Metadata.Name == PostgresName));
        }
    }

    [Fact]
    public async Task Every_object_carries_the_standard_labels_and_the_components_the_guide_selects()
    {
        var expectedComponent = new Dictionary<string, string>
        {
            [ApiName] = "api",
            [WebName] = "web",
            [AgentName] = "k8s-agent",
            [PostgresName] = "postgres",
        };

        foreach (var chart in await RenderedChart.LoadAllAsync())
        {
            foreach (var item in chart.Objects)
            {
                var labels = item.Metadata.Labels ?? new Dictionary<string, string>();
                var missing = StandardLabels.Where(l => !labels.ContainsKey(l)).ToList();
                Assert.True(missing.Count == 0, $"{chart.Case}: {item.Kind} {item.Metadata.Name} lacks {string.Join(", ", missing)}");
                Assert.Equal("Helm", labels["app.kubernetes.io/managed-by"]);
                Assert.Equal(RenderedChart.Release, labels["app.kubernetes.io/instance"]);
            }

            foreach (var workload in chart.Workloads())
            {
                Assert.Equal(expectedComponent[workload.Name], workload.Component);
                var missing = StandardLabels.Where(l => !workload.PodLabels.ContainsKey(l)).ToList();
                Assert.True(missing.Count == 0, $"{chart.Case}: pods of {workload.Name} lack {string.Join(", ", missing)}");
                Assert.Equal(expectedComponent[workload.Name], workload.PodLabels["app.kubernetes.io/component"]);
                Assert.All(workload.Selector.MatchLabels, s => Assert.Equal(s.Value, workload.PodLabels[s.Key]));
            }

            // The guide's other selectors: API pods as the control plane, PostgreSQL pods as app=postgres.
            Assert.Equal("control-plane", chart.Workloads().Single(w => w.Name == ApiName).PodLabels["streamspace.io/role"]);
            if (chart.Workloads().SingleOrDefault(w => w.Name == PostgresName) is { } postgres)
            {
                Assert.Equal("postgres", postgres.PodLabels["app"]);
            }
        }
    }

    [Fact]
    public async Task Probes_check_alive_for_liveness_and_health_for_readiness_and_the_agent_is_ready_only_when_connected()
    {
        var chart = await RenderedChart.LoadAsync(RenderedChart.DefaultCase);
        foreach (var name in new[] { ApiName, WebName, AgentName })
        {
            var container = chart.Container(name);
            var liveness = container.LivenessProbe.HttpGet;
            var readiness = container.ReadinessProbe.HttpGet;
            Assert.Equal("/alive", liveness.Path);
            Assert.Equal("/health", readiness.Path);
            Assert.Equal(liveness.Port.Value, readiness.Port.Value);
            Assert.Contains(container.Ports, p => p.Name == readiness.Port.Value);
        }

        // The agent's health listener: port 8081, whose /health answers 200 only while the hub connection is up.
        var agent = chart.Container(AgentName);
        Assert.Equal(8081, Assert.Single(agent.Ports, p => p.Name == agent.ReadinessProbe.HttpGet.Port.Value).ContainerPort);
    }

    [Fact]
    public async Task Without_the_k8s_agent_nothing_of_it_is_rendered_and_the_api_provisions_no_agent()
    {
        foreach (var name in new[] { RenderedChart.AgentDisabledCase, RenderedChart.NoAgentSectionCase })
        {
            var chart = await RenderedChart.LoadAsync(name);
            Assert.DoesNotContain(chart.Objects, o => Component(o) == "k8s-agent");
            Assert.Empty(chart.All<V1Role>());
            Assert.Empty(chart.All<V1RoleBinding>());
            Assert.Empty(chart.All<V1ServiceAccount>());
            Assert.Null(chart.FindDeployment(AgentName));

            var api = EnvNames(chart.Container(ApiName));
            Assert.DoesNotContain("PROVISIONED_AGENT_ID", api);
            Assert.DoesNotContain("PROVISIONED_AGENT_KEY", api);
            Assert.NotNull(chart.FindDeployment(WebName));
        }
    }

    [Fact]
    public async Task The_agent_role_and_binding_live_in_the_session_namespace_and_bind_the_agents_service_account()
    {
        var cases = new Dictionary<string, string>
        {
            [RenderedChart.DefaultCase] = DefaultSessionNamespace,
            [RenderedChart.NetworkPolicyAndIngressCase] = OperatorSessionNamespace,
        };
        foreach (var (name, sessionNamespace) in cases)
        {
            var chart = await RenderedChart.LoadAsync(name);
            var pod = chart.Deployment(AgentName).Spec.Template.Spec;
            Assert.Equal(sessionNamespace, Value(Assert.Single(pod.Containers), "SESSION_NAMESPACE"));

            var account = Assert.Single(chart.All<V1ServiceAccount>());
            Assert.Equal(pod.ServiceAccountName, account.Metadata.Name);
            var role = Assert.Single(chart.All<V1Role>());
            var binding = Assert.Single(chart.All<V1RoleBinding>());
            Assert.Equal(sessionNamespace, role.Metadata.NamespaceProperty);
            Assert.Equal(sessionNamespace, binding.Metadata.NamespaceProperty);
            Assert.Equal(("Role", role.Metadata.Name), (binding.RoleRef.Kind, binding.RoleRef.Name));
            var subject = Assert.Single(binding.Subjects);
            Assert.Equal(("ServiceAccount", account.Metadata.Name, Namespace), (subject.Kind, subject.Name, subject.NamespaceProperty));

            // Namespaced and explicit, no wildcards; the one cluster-wide grant reads storage classes, which are cluster-scoped.
            var clusterRole = Assert.Single(chart.All<V1ClusterRole>());
            Assert.Equal(["storageclasses"], Assert.Single(clusterRole.Rules).Resources);
            var clusterBinding = Assert.Single(chart.All<V1ClusterRoleBinding>());
            Assert.Equal(("ClusterRole", clusterRole.Metadata.Name), (clusterBinding.RoleRef.Kind, clusterBinding.RoleRef.Name));
            Assert.Equal(("ServiceAccount", account.Metadata.Name, Namespace), (Assert.Single(clusterBinding.Subjects).Kind, clusterBinding.Subjects[0].Name, clusterBinding.Subjects[0].NamespaceProperty));
            Assert.DoesNotContain(chart.AgentRoleGrants(), g => g.ApiGroup == "*" || g.Resource == "*" || g.Verb == "*");
            Assert.Contains(("apps", "deployments", "create"), chart.AgentRoleGrants());

            // Only the agent talks to the Kubernetes API.
            Assert.All(chart.Workloads().Where(w => w.Name != AgentName), w => Assert.False(w.Template.Spec.AutomountServiceAccountToken));
        }
    }

    [Fact]
    public async Task Sessions_run_in_a_namespace_of_their_own_that_the_chart_renders_and_an_uninstall_keeps()
    {
        var chart = await RenderedChart.LoadAsync(RenderedChart.DefaultCase);
        Assert.Equal(DefaultSessionNamespace, Value(chart.Container(AgentName), "SESSION_NAMESPACE"));
        var sessions = Assert.Single(chart.All<V1Namespace>());
        Assert.Equal(DefaultSessionNamespace, sessions.Metadata.Name);
        // Deleting the namespace would delete every user's home volume in it.
        Assert.Equal("keep", sessions.Metadata.Annotations["helm.sh/resource-policy"]);

        // Pod Security Admission's restricted level, which the pods the agent creates meet: if they stopped meeting it,
        // no session would start.
        Assert.Equal("restricted", sessions.Metadata.Labels["pod-security.kubernetes.io/enforce"]);
        var session = new SessionCommandPayload("sess-psa", Guid.NewGuid(), "alice", Templates.Xterm with { Image = "example/session:1" });
        var pod = SessionObjects.Deployment(session, new AgentSettings { Platform = AgentPlatform.Kubernetes, SessionNamespace = DefaultSessionNamespace })
            .Spec.Template.Spec;
        Assert.True(pod.SecurityContext.RunAsNonRoot);
        Assert.Equal("RuntimeDefault", pod.SecurityContext.SeccompProfile.Type);
        Assert.Null(pod.HostNetwork);
        Assert.All(pod.Containers, c =>
        {
            Assert.False(c.SecurityContext.AllowPrivilegeEscalation);
            Assert.Equal(["ALL"], c.SecurityContext.Capabilities.Drop);
            Assert.Null(c.SecurityContext.Capabilities.Add);
            Assert.NotEqual(true, c.SecurityContext.Privileged);
        });

        // A namespace the operator made is theirs: the chart renders none, and puts nothing of the agent's in the release namespace.
        var own = await RenderedChart.LoadAsync(RenderedChart.NetworkPolicyAndIngressCase);
        Assert.Empty(own.All<V1Namespace>());
        Assert.Equal(OperatorSessionNamespace, Value(own.Container(AgentName), "SESSION_NAMESPACE"));
        Assert.DoesNotContain(own.All<V1Role>(), r => r.Metadata.NamespaceProperty is null or Namespace);
    }

    [Fact]
    public async Task The_agent_writes_recordings_to_a_persistent_volume_claim_that_an_uninstall_keeps()
    {
        var chart = await RenderedChart.LoadAsync(RenderedChart.DefaultCase);
        var claim = chart.Single<V1PersistentVolumeClaim>(AgentName + "-recordings");
        Assert.Equal("keep", claim.Metadata.Annotations["helm.sh/resource-policy"]);
        Assert.Equal(["ReadWriteOnce"], claim.Spec.AccessModes);

        var agent = chart.Deployment(AgentName).Spec.Template.Spec;
        var directory = Value(chart.Container(AgentName), "RECORDINGS_DIR");
        var mount = Assert.Single(chart.Container(AgentName).VolumeMounts, m => m.MountPath == directory);
        Assert.Equal(claim.Metadata.Name, Assert.Single(agent.Volumes, v => v.Name == mount.Name).PersistentVolumeClaim.ClaimName);
        // The agent runs as a non-root uid: the volume is writable by its group.
        Assert.NotNull(agent.SecurityContext.FsGroup);
        // Retention keeps all recordings under the API's limit, so by default they fit the volume with a fifth to spare for exports.
        var limit = long.Parse(Value(chart.Container(ApiName), "RECORDING_MAX_TOTAL_BYTES"), System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(limit <= claim.Spec.Resources.Requests["storage"].ToInt64() * 4 / 5,
            $"RECORDING_MAX_TOTAL_BYTES {limit} does not leave room on the {claim.Spec.Resources.Requests["storage"]} recordings volume");
    }

    [Fact]
    public async Task A_session_namespace_equal_to_the_release_namespace_fails_to_render_and_says_why()
    {
        var refused = await RenderedChart.TemplateAsync("--set", $"k8sAgent.config.sessionNamespace={Namespace}");
        Assert.NotEqual(0, refused.ExitCode);
        Assert.Contains($"k8sAgent.config.sessionNamespace must not be the release namespace \"{Namespace}\": the agent's Role in the session namespace may read Secrets",
            refused.StandardError, StringComparison.Ordinal);
        Assert.Contains("streamspace-secrets", refused.StandardError, StringComparison.Ordinal);
        Assert.Empty(refused.StandardOutput);

        // Any other namespace renders.
        var accepted = await RenderedChart.TemplateAsync("--set", "k8sAgent.config.sessionNamespace=desktops");
        Assert.True(accepted.ExitCode == 0, accepted.StandardError);
        Assert.Contains("value: \"desktops\"", accepted.StandardOutput, StringComparison.Ordinal);
    }

    [Fact]
    public async Task By_default_no_pod_may_claim_a_client_address_through_X_Forwarded_For()
    {
        var chart = await RenderedChart.LoadAsync(RenderedChart.DefaultCase);
        foreach (var name in new[] { ApiName, WebName })
        {
            // Loopback only (which the code always trusts): an ingress range has to be added on purpose.
            var settings = SettingsBinder.Bind<TrustedProxySettings>(ConfigurationOf(chart.Container(name)));
            Assert.Empty(settings.Networks);
        }
    }

    [Fact]
    public async Task The_ingress_sends_root_to_the_ui_and_api_vnc_audio_and_agent_to_the_api_with_websocket_timeouts()
    {
        var chart = await RenderedChart.LoadAsync(RenderedChart.NetworkPolicyAndIngressCase);
        var ingress = Assert.Single(chart.All<V1Ingress>());
        var routes = Assert.Single(ingress.Spec.Rules).Http.Paths
            .ToDictionary(p => p.Path, p => (p.Backend.Service.Name, p.Backend.Service.Port.Number));
        Assert.Equal(new Dictionary<string, (string, int?)>
        {
            ["/"] = (WebName, 8080),
            ["/api"] = (ApiName, 8000),
            ["/vnc"] = (ApiName, 8000),
            ["/audio"] = (ApiName, 8000),
            ["/agent"] = (ApiName, 8000),
        }, routes);
        Assert.Equal("3600", ingress.Metadata.Annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]);
        Assert.Equal("3600", ingress.Metadata.Annotations["nginx.ingress.kubernetes.io/proxy-send-timeout"]);
        Assert.Empty((await RenderedChart.LoadAsync(RenderedChart.DefaultCase)).All<V1Ingress>());
    }

    [Fact]
    public async Task The_seeds_helm_verification_holds_k8sAgent_values_and_no_nats_or_v1_controller()
    {
        var values = await File.ReadAllLinesAsync(Path.Combine(RenderedChart.ChartDirectory, "values.yaml"));
        Assert.Contains(values, line => line.StartsWith("k8sAgent:", StringComparison.Ordinal));

        // Everything helm reads; the README may say that NATS is gone.
        foreach (var file in Directory.EnumerateFiles(RenderedChart.ChartDirectory, "*", SearchOption.AllDirectories).Where(f => !f.EndsWith(".md", StringComparison.Ordinal)))
        {
            Assert.DoesNotContain("nats", Path.GetFileName(file), StringComparison.OrdinalIgnoreCase);
            Assert.False(NatsWord().IsMatch(await File.ReadAllTextAsync(file)), $"{file} mentions NATS");
        }

        var chart = await RenderedChart.LoadAsync(RenderedChart.DefaultCase);
        Assert.NotNull(chart.FindDeployment(AgentName));
        Assert.DoesNotContain(chart.Objects, o => o.Metadata.Name.Contains("controller", StringComparison.Ordinal) ||
            Component(o)?.Contains("controller", StringComparison.Ordinal) == true);
    }

    // ---- Secrets ----

    [Fact]
    public async Task Secret_settings_reach_pods_only_through_secretKeyRef()
    {
        // Every setting the code marks secret, except the connection string, which carries the password by expansion.
        var secretSettings = SettingsOf(typeof(ApiSettings)).Concat(SettingsOf(typeof(AgentSettings)))
            .Where(s => s.Secret && s.Name != "ConnectionStrings__streamspace")
            .Select(s => s.Name)
            .Append("POSTGRES_PASSWORD")
            .ToHashSet();
        Assert.Superset(new HashSet<string> { "ADMIN_PASSWORD", "JWT_SECRET", "AGENT_KEY", "PROVISIONED_AGENT_KEY" }, secretSettings);

        foreach (var chart in await RenderedChart.LoadAllAsync())
        {
            var seen = new HashSet<string>();
            foreach (var workload in chart.Workloads())
            {
                foreach (var env in workload.Template.Spec.Containers.SelectMany(c => c.Env ?? []).Where(e => secretSettings.Contains(e.Name)))
                {
                    Assert.True(env.Value is null && env.ValueFrom?.SecretKeyRef is not null,
                        $"{chart.Case}: {workload.Name} sets {env.Name} other than through a secretKeyRef");
                    seen.Add(env.Name);
                }
            }

            Assert.Superset(new HashSet<string> { "ADMIN_PASSWORD", "JWT_SECRET", "POSTGRES_PASSWORD" }, seen);
            if (chart.FindDeployment(AgentName) is not null)
            {
                Assert.Superset(new HashSet<string> { "AGENT_KEY", "PROVISIONED_AGENT_KEY" }, seen);
            }
        }
    }

    [Fact]
    public async Task The_connection_string_gets_the_database_password_by_expansion_from_a_secret_declared_before_it()
    {
        foreach (var chart in await RenderedChart.LoadAllAsync())
        {
            var env = chart.Container(ApiName).Env.ToList();
            var password = env.FindIndex(e => e.Name == "POSTGRES_PASSWORD");
            var connection = env.FindIndex(e => e.Name == "ConnectionStrings__streamspace");
            Assert.True(password >= 0 && password < connection, $"{chart.Case}: POSTGRES_PASSWORD must come before the connection string that expands it");
            Assert.Equal("postgres-password", env[password].ValueFrom.SecretKeyRef.Key);

            var parts = env[connection].Value.Split(';').Select(p => p.Split('=', 2)).ToDictionary(p => p[0], p => p[1]);
            Assert.Equal("$(POSTGRES_PASSWORD)", parts["Password"]);
        }

        var external = await RenderedChart.LoadAsync(RenderedChart.ExternalPostgresCase);
        var api = external.Container(ApiName);
        Assert.Equal("streamspace-db", api.Env.Single(e => e.Name == "POSTGRES_PASSWORD").ValueFrom.SecretKeyRef.Name);
        Assert.Equal("Host=db.example.com;Port=5433;Database=streamspace_prod;Username=streamspace_app;Password=$(POSTGRES_PASSWORD);SSL Mode=VerifyFull",
            Value(api, "ConnectionStrings__streamspace"));
    }

    [Fact]
    public async Task Every_secretKeyRef_names_a_rendered_secret_and_key_or_the_operators_own_secret()
    {
        foreach (var chart in await RenderedChart.LoadAllAsync())
        {
            var rendered = chart.SecretValues().Select(s => (s.Secret, s.Key)).ToHashSet();
            var references = chart.Workloads()
                .SelectMany(w => w.Template.Spec.Containers)
                .SelectMany(c => c.Env ?? [])
                .Where(e => e.ValueFrom?.SecretKeyRef is not null)
                .Select(e => (e.ValueFrom.SecretKeyRef.Name, e.ValueFrom.SecretKeyRef.Key))
                .ToHashSet();
            var external = references.Where(r => !rendered.Contains(r)).ToList();
            var expectedExternal = chart.Case switch
            {
                RenderedChart.ExternalPostgresCase => [("streamspace-db", "postgres-password")],
                RenderedChart.OidcCase => [("streamspace-oidc", "client-secret")],
                _ => Array.Empty<(string, string)>(),
            };
            Assert.Equal(expectedExternal, external);
        }

        var secrets = (await RenderedChart.LoadAsync(RenderedChart.DefaultCase)).SecretValues().Select(s => $"{s.Secret}/{s.Key}").Order();
        Assert.Equal(
            ["streamspace-admin-credentials/password", "streamspace-admin-credentials/username",
             "streamspace-secrets/agent-key", "streamspace-secrets/jwt-secret", "streamspace-secrets/postgres-password"],
            secrets);
    }

    [Fact]
    public async Task Single_sign_on_values_reach_the_api_and_the_ui_alike_and_the_client_secret_only_by_reference()
    {
        var chart = await RenderedChart.LoadAsync(RenderedChart.OidcCase);
        var api = chart.Container(ApiName).Env.ToDictionary(e => e.Name);
        var web = chart.Container(WebName).Env.ToDictionary(e => e.Name);
        foreach (var (name, value) in new[] { ("OIDC_ISSUER", "https://id.example.com/realms/staff"), ("OIDC_CLIENT_ID", "streamspace"), ("LOCAL_LOGIN", "false") })
        {
            Assert.Equal(value, api[name].Value);
            Assert.Equal(value, web[name].Value);
        }

        Assert.Equal("streamspace-admins,it-ops", api["OIDC_ADMIN_GROUPS"].Value);
        Assert.Equal("true", web["OIDC_END_SESSION"].Value);
        Assert.Null(web["OIDC_CLIENT_SECRET"].Value);
        Assert.Equal(("streamspace-oidc", "client-secret"), (web["OIDC_CLIENT_SECRET"].ValueFrom.SecretKeyRef.Name, web["OIDC_CLIENT_SECRET"].ValueFrom.SecretKeyRef.Key));
        Assert.DoesNotContain("OIDC_CLIENT_SECRET", api.Keys);

        // By default: passwords, no provider, and so a public client with no secret at all.
        var defaults = (await RenderedChart.LoadAsync(RenderedChart.DefaultCase)).Container(WebName).Env.ToDictionary(e => e.Name);
        Assert.Equal(("", "true", ""), (defaults["OIDC_ISSUER"].Value, defaults["LOCAL_LOGIN"].Value, defaults["OIDC_CLIENT_SECRET"].Value));
    }

    [Fact]
    public async Task No_rendered_object_carries_a_secrets_value_in_plain_text()
    {
        foreach (var chart in await RenderedChart.LoadAllAsync())
        {
            var secretValues = chart.SecretValues().Select(s => s.Value).ToHashSet();
            foreach (var env in chart.Workloads().SelectMany(w => w.Template.Spec.Containers).SelectMany(c => c.Env ?? []))
            {
                Assert.False(env.Value is not null && secretValues.Contains(env.Value), $"{chart.Case}: {env.Name} has a secret's value in plain text");
            }

            // Nowhere else either (annotations, args, ...). Short values such as the admin username are not secret.
            foreach (var item in chart.Objects.Where(o => o is not V1Secret))
            {
                var yaml = KubernetesYaml.Serialize(item);
                Assert.DoesNotContain(secretValues.Where(v => v.Length >= 16), v => yaml.Contains(v, StringComparison.Ordinal));
            }
        }
    }

    // ---- Network policies ----

    [Fact]
    public async Task Network_policies_let_agent_web_and_ingress_reach_the_api_only_the_api_and_web_reach_postgres_and_only_the_agent_reach_sessions()
    {
        var chart = await RenderedChart.LoadAsync(RenderedChart.NetworkPolicyAndIngressCase);
        var policies = chart.All<V1NetworkPolicy>().ToList();
        var pods = chart.Workloads().ToDictionary(w => w.Name, w => new PodIdentity(w.Name, Namespace, w.PodLabels));
        var (api, web, agent, postgres) = (pods[ApiName], pods[WebName], pods[AgentName], pods[PostgresName]);
        var ingressController = new PodIdentity("ingress-nginx-controller", "ingress-nginx", new Dictionary<string, string> { ["app.kubernetes.io/name"] = "ingress-nginx" });
        var stranger = new PodIdentity("stranger", Namespace, new Dictionary<string, string> { ["app"] = "stranger" });
        var session = SessionPod("alice", OperatorSessionNamespace);

        bool Allows(PodIdentity from, PodIdentity to, int port) => NetworkPolicies.Allows(policies, Namespace, from, to, port);

        Assert.True(Allows(agent, api, 8000), "agent → api:8000");
        Assert.True(Allows(web, api, 8000), "web → api:8000");
        Assert.True(Allows(ingressController, api, 8000), "ingress → api:8000");
        Assert.True(Allows(ingressController, web, 8080), "ingress → web:8080");
        Assert.True(Allows(api, postgres, 5432), "api → postgres:5432");
        Assert.True(Allows(web, postgres, 5432), "web → postgres:5432, for its Data Protection keys");
        Assert.True(Allows(agent, session, 5900), "agent → session:5900");
        Assert.True(Allows(agent, session, 5901), "agent → session:5901, this site's second VNC port");
        Assert.False(Allows(agent, session, 5902), "agent → session:5902, not a VNC port here");

        Assert.False(Allows(stranger, api, 8000), "stranger → api");
        Assert.False(Allows(agent, api, 5432), "agent → api on another port");
        Assert.False(Allows(stranger, web, 8080), "stranger → web");
        foreach (var other in new[] { stranger, agent, ingressController })
        {
            Assert.False(Allows(other, postgres, 5432), $"{other} → postgres");
        }

        Assert.False(Allows(stranger, session, 5900), "stranger → session");
        Assert.False(Allows(api, session, 5900), "api → session");
        Assert.True(Allows(agent, session, SessionObjects.FilesPort), "agent → session's file service");
        Assert.False(Allows(stranger, session, SessionObjects.FilesPort), "stranger → session's file service");
        Assert.False(Allows(api, session, SessionObjects.FilesPort), "api → session's file service");

        // The site's own cluster range and allowlist: its proxy inside 10.0.0.0/8 is reachable, the rest of it is not,
        // and private ranges it did not list are; the metadata service stays out of reach whatever the site lists.
        bool Egress(string address, int port) => NetworkPolicies.AllowsEgress(policies, Namespace, session, new Destination(address), port);
        Assert.True(Egress("10.20.30.40", 3128), "session → the site's proxy in extraEgressCidrs");
        Assert.False(Egress("10.96.0.1", 443), "session → a service in the site's clusterCidrs");
        Assert.True(Egress("192.168.1.10", 443), "session → a private range this site did not list");
        Assert.False(Egress("fd00:10::5", 443), "session → the site's IPv6 cluster range");
        Assert.False(Egress("169.254.169.254", 80), "session → cloud metadata");
        Assert.False(Egress("fd00:ec2::254", 80), "session → cloud metadata over IPv6");

        // Turned off, the chart renders no policy at all.
        var off = await RenderedChart.TemplateAsync("--set", "networkPolicy.enabled=false");
        Assert.True(off.ExitCode == 0, off.StandardError);
        Assert.DoesNotContain("kind: NetworkPolicy", off.StandardOutput, StringComparison.Ordinal);
    }

    [Fact]
    public async Task By_default_only_the_agent_reaches_sessions_and_sessions_reach_dns_and_the_internet_but_not_the_cluster_or_cloud_metadata()
    {
        var chart = await RenderedChart.LoadAsync(RenderedChart.DefaultCase);
        var policies = chart.All<V1NetworkPolicy>().ToList();
        var pods = chart.Workloads().ToDictionary(w => w.Name, w => new PodIdentity(w.Name, Namespace, w.PodLabels));
        var (api, web, agent, postgres) = (pods[ApiName], pods[WebName], pods[AgentName], pods[PostgresName]);
        var session = SessionPod("alice", DefaultSessionNamespace);
        var otherSession = SessionPod("bob", DefaultSessionNamespace);
        var dns = new PodIdentity("coredns", "kube-system", new Dictionary<string, string> { ["k8s-app"] = "kube-dns" });

        // The sessions' policy is in the session namespace and selects the pods by the labels the agent sets.
        var sessionPolicy = Assert.Single(policies, p => p.Metadata.NamespaceProperty == DefaultSessionNamespace);
        Assert.True(NetworkPolicies.Matches(sessionPolicy.Spec.PodSelector, session.Labels));
        Assert.Equal(["Ingress", "Egress"], sessionPolicy.Spec.PolicyTypes);
        var from = Assert.Single(sessionPolicy.Spec.Ingress);
        Assert.Equal(["5900", SessionObjects.FilesPort.ToString(System.Globalization.CultureInfo.InvariantCulture)], from.Ports.Select(p => p.Port.Value));
        var agentPeer = Assert.Single(from.FromProperty);
        Assert.Equal(Namespace, agentPeer.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"]);
        Assert.Equal("k8s-agent", agentPeer.PodSelector.MatchLabels["app.kubernetes.io/component"]);

        // In: the agent on the VNC port, nobody else, on no other port.
        bool Allows(PodIdentity from, PodIdentity to, int port) => NetworkPolicies.Allows(policies, Namespace, from, to, port);
        Assert.True(Allows(agent, session, SessionObjects.DefaultVncPort), "agent → session:5900");
        Assert.True(Allows(agent, session, SessionObjects.FilesPort), "agent → session's file service");
        Assert.False(Allows(agent, session, 22), "agent → session:22");
        foreach (var other in new[] { api, web, postgres, otherSession })
        {
            Assert.False(Allows(other, session, SessionObjects.DefaultVncPort), $"{other} → session:5900");
            Assert.False(Allows(other, session, SessionObjects.FilesPort), $"{other} → session's file service");
        }

        // Out: the cluster DNS on 53, the internet; not the pod and service ranges, the platform, other sessions, or metadata.
        bool Egress(Destination to, int port, string protocol = "TCP") => NetworkPolicies.AllowsEgress(policies, Namespace, session, to, port, protocol);
        Assert.True(Egress(new("10.244.0.10", dns), 53, "UDP"), "session → kube-dns:53/udp");
        Assert.True(Egress(new("10.244.0.10", dns), 53), "session → kube-dns:53/tcp");
        Assert.False(Egress(new("10.244.0.10", dns), 8080), "session → kube-dns on another port");
        Assert.True(Egress(new("203.0.113.10"), 443), "session → the internet");
        Assert.True(Egress(new("2001:db8::10"), 443), "session → the internet over IPv6");
        Assert.False(Egress(new("169.254.169.254"), 80), "session → cloud metadata");
        Assert.False(Egress(new("fd00:ec2::254"), 80), "session → cloud metadata over IPv6");
        foreach (var (address, port) in new[] { ("10.96.0.1", 443), ("172.20.0.10", 443), ("192.168.1.10", 22), ("100.64.0.10", 443), ("fd00:10::5", 443) })
        {
            Assert.False(Egress(new(address), port), $"session → {address}:{port} in the cluster's ranges");
        }

        Assert.False(Egress(new("10.244.1.7", api), 8000), "session → api");
        Assert.False(Egress(new("172.16.3.4", postgres), 5432), "session → postgres");
        Assert.False(Egress(new("192.168.7.8", otherSession), 5900), "session → another user's session");

        var denied = sessionPolicy.Spec.Egress.SelectMany(r => r.To).Where(p => p.IpBlock is not null).SelectMany(p => p.IpBlock.Except).ToHashSet();
        Assert.Superset(new HashSet<string> { "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.169.254/32" }, denied);

        // PostgreSQL: the API, and the web for its Data Protection keys; nothing else, sessions least of all.
        Assert.True(Allows(api, postgres, 5432), "api → postgres");
        Assert.True(Allows(web, postgres, 5432), "web → postgres");
        foreach (var other in new[] { agent, session })
        {
            Assert.False(Allows(other, postgres, 5432), $"{other} → postgres");
        }

        var postgresPolicy = chart.Single<V1NetworkPolicy>(PostgresName);
        var peers = Assert.Single(postgresPolicy.Spec.Ingress).FromProperty;
        Assert.All(peers, peer => Assert.Null(peer.NamespaceSelector));
        Assert.Equal(["api", "web"], peers.Select(peer => peer.PodSelector.MatchLabels["app.kubernetes.io/component"]).Order());
    }

    // ---- Code ≡ chart ----

    [Fact]
    public async Task The_chart_sets_every_setting_the_api_web_and_agent_read()
    {
        foreach (var chart in await RenderedChart.LoadAllAsync())
        {
            var agentEnabled = chart.FindDeployment(AgentName) is not null;
            foreach (var (deployment, _, _, settings) in Processes)
            {
                if (chart.FindDeployment(deployment) is null)
                {
                    continue;
                }

                var expected = settings.SelectMany(SettingsOf).Select(s => s.Name)
                    // The provisioned agent exists only with the chart's own agent.
                    .Where(n => agentEnabled || !n.StartsWith("PROVISIONED_AGENT_", StringComparison.Ordinal))
                    .Where(n => deployment != AgentName || !AgentSettingsNotForKubernetes.Contains(n));
                AssertAllSet(chart.Case, deployment, expected, EnvNames(chart.Container(deployment)));
            }
        }
    }

    [Fact]
    public async Task The_chart_sets_no_env_var_that_neither_the_code_nor_the_apphost_uses()
    {
        foreach (var chart in await RenderedChart.LoadAllAsync())
        {
            foreach (var (deployment, resource, _, settings) in Processes)
            {
                if (chart.FindDeployment(deployment) is null)
                {
                    continue;
                }

                var known = new HashSet<string>(StringComparer.Ordinal);
                known.UnionWith(settings.SelectMany(SettingsOf).Select(s => s.Name));
                known.UnionWith(manifest.EnvironmentOf(resource).Select(InChart));
                known.UnionWith(resource switch
                {
                    "api" or "web" => ExpansionOnly,
                    _ => [],
                });

                var unknown = EnvNames(chart.Container(deployment)).Except(known).ToList();
                Assert.True(unknown.Count == 0,
                    $"{chart.Case}: {deployment} sets {string.Join(", ", unknown)}, which no settings class and no AppHost resource uses (a misspelt name?)");
            }
        }
    }

    [Fact]
    public async Task The_chart_sets_every_env_var_the_apphost_gives_api_web_and_agent()
    {
        var chart = await RenderedChart.LoadAsync(RenderedChart.DefaultCase);
        foreach (var (deployment, resource, _, _) in Processes)
        {
            var expected = manifest.EnvironmentOf(resource)
                .Where(name => !NotForTheChart(name))
                .Where(name => resource != "agent" || !AgentSettingsNotForKubernetes.Contains(name))
                .Select(InChart);
            AssertAllSet(chart.Case, deployment, expected, EnvNames(chart.Container(deployment)));
        }

        // The comparison means something only while the manifest has the settings the AppHost wires.
        Assert.Contains("JWT_SECRET", manifest.EnvironmentOf("api"));
        Assert.Contains("CONTROL_PLANE_URL", manifest.EnvironmentOf("agent"));
        Assert.Contains("services__api__http__0", manifest.EnvironmentOf("web"));
    }

    [Fact]
    public async Task Every_http_endpoint_the_apphost_gives_is_a_chart_service_on_the_projects_own_port_or_the_agents_probe_port()
    {
        var chart = await RenderedChart.LoadAsync(RenderedChart.DefaultCase);
        foreach (var (deployment, resource, project, _) in Processes)
        {
            var bindings = manifest.BindingsOf(resource);
            var container = chart.Container(deployment);
            if (resource == "agent")
            {
                // The agent dials out; its only endpoint is the health listener (AGENT_HEALTH_PORT), for probes, not a Service.
                Assert.Equal(["health"], bindings.Keys);
                var health = Assert.Single(container.Ports);
                Assert.Equal("health", health.Name);
                Assert.Equal(health.ContainerPort.ToString(System.Globalization.CultureInfo.InvariantCulture), Value(container, "AGENT_HEALTH_PORT"));
                continue;
            }

            // The https endpoints are the AppHost's local TLS; in the cluster the ingress ends TLS.
            var http = bindings.Where(b => b.Value == "http").Select(b => b.Key).ToList();
            Assert.Equal(["http"], http);
            var port = LaunchSettingsPort(project);
            Assert.Equal(port, Assert.Single(container.Ports, p => p.Name == "http").ContainerPort);
            Assert.Equal(port.ToString(System.Globalization.CultureInfo.InvariantCulture), Value(container, "ASPNETCORE_HTTP_PORTS"));
            Assert.Contains(chart.Single<V1Service>(deployment).Spec.Ports, p => p.Name == "http" && p.Port == port && p.TargetPort.Value == "http");
        }
    }

    [Fact]
    public async Task The_rendered_settings_pass_the_codes_own_validation()
    {
        foreach (var chart in await RenderedChart.LoadAllAsync())
        {
            SettingsBinder.Bind<ApiSettings>(ConfigurationOf(chart.Container(ApiName)));
            if (chart.FindDeployment(AgentName) is not null)
            {
                var agent = SettingsBinder.Bind<AgentSettings>(ConfigurationOf(chart.Container(AgentName)));
                Assert.Equal(AgentPlatform.Kubernetes, agent.Platform);
                Assert.Null(AgentSettings.NormalizeControlPlaneUrl(agent.ControlPlaneUrl).Change);
            }
        }
    }

    // ---- Helpers ----

    /// <summary>A session pod with the labels the agent gives it.</summary>
    private static PodIdentity SessionPod(string username, string sessionNamespace)
    {
        var session = new SessionCommandPayload("sess-" + username, Guid.NewGuid(), username, Templates.Xterm);
        return new PodIdentity($"session of {username}", sessionNamespace, SessionObjects.Labels(session));
    }

    private static IEnumerable<SettingAttribute> SettingsOf(Type type) => SettingsBinder.SettingsOf(type).Select(s => s.Setting);

    private static string? Component(IKubernetesObject<V1ObjectMeta> item) =>
        item.Metadata.Labels is { } labels && labels.TryGetValue("app.kubernetes.io/component", out var component) ? component : null;

    private static HashSet<string> EnvNames(V1Container container) =>
        (container.Env ?? []).Select(e => e.Name).ToHashSet(StringComparer.Ordinal);

    private static string Value(V1Container container, string name)
    {
        var env = Assert.Single(container.Env, e => e.Name == name);
        return env.Value ?? throw new Xunit.Sdk.XunitException($"{name} has no plain value");
    }

    private static void AssertAllSet(string chartCase, string deployment, IEnumerable<string> expected, IReadOnlySet<string> actual)
    {
        var missing = expected.Where(e => !actual.Contains(e)).ToList();
        Assert.True(missing.Count == 0, $"{chartCase}: {deployment} does not set {string.Join(", ", missing)}");
    }

    private static string InChart(string manifestName) => RenamedInChart.GetValueOrDefault(manifestName, manifestName);

    /// <summary>
    /// Env vars the AppHost adds for its local run that have no meaning in the cluster:
    /// OTEL_* point at the local Aspire dashboard (in a cluster the operator sets OTEL_EXPORTER_OTLP_ENDPOINT);
    /// https service references are the local TLS endpoints (the ingress ends TLS);
    /// API_HTTP / API_HTTPS are Aspire 13's second spelling of services__api__http(s)__0, which service discovery reads.
    /// </summary>
    /// <summary>
    /// Aspire's publish manifest sets ASPNETCORE_FORWARDEDHEADERS_ENABLED, which believes X-Forwarded-For from anyone;
    /// the chart sets TRUSTED_PROXY_NETWORKS instead, which believes only the named proxy networks.
    /// </summary>
    private bool NotForTheChart(string name) =>
        name == "ASPNETCORE_FORWARDEDHEADERS_ENABLED" ||
        name.StartsWith("OTEL_", StringComparison.Ordinal) ||
        (name.StartsWith("services__", StringComparison.Ordinal) && name.Contains("__https__", StringComparison.Ordinal)) ||
        (EndpointAlias().Match(name) is { Success: true } alias && manifest.ResourceNames.Contains(alias.Groups[1].Value.ToLowerInvariant()));

    private static int LaunchSettingsPort(string project)
    {
        using var launch = JsonDocument.Parse(File.ReadAllText(Path.Combine(Repository.Root, project, "Properties", "launchSettings.json")));
        var url = launch.RootElement.GetProperty("profiles").GetProperty("http").GetProperty("applicationUrl").GetString()!;
        return new Uri(url.Split(';')[0]).Port;
    }

    /// <summary>
    /// A container's env as the process would see it: Kubernetes' $(NAME) expansion applied, and every secretKeyRef
    /// replaced by a stand-in long enough for the code's length rules.
    /// </summary>
    private static IConfiguration ConfigurationOf(V1Container container)
    {
        var environment = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var env in container.Env ?? [])
        {
            environment[env.Name] = env.ValueFrom?.SecretKeyRef is not null
                ? new string('s', 64)
                : KubernetesExpansion().Replace(env.Value ?? "", m => environment.GetValueOrDefault(m.Groups[1].Value, m.Value));
        }

        return new ConfigurationBuilder()
            .AddInMemoryCollection(environment.Select(e => KeyValuePair.Create<string, string?>(e.Key.Replace("__", ":", StringComparison.Ordinal), e.Value)))
            .Build();
    }

    [GeneratedRegex(@"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")]
    private static partial Regex KubernetesExpansion();

    [GeneratedRegex("^([A-Z0-9_]+)_HTTPS?$")]
    private static partial Regex EndpointAlias();

    [GeneratedRegex(@"\bnats\b", RegexOptions.IgnoreCase)]
    private static partial Regex NatsWord();
}
