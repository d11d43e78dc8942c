using System.Diagnostics.Metrics;
using System.Text.Json;
using System.Text.RegularExpressions;
using k8s;
using k8s.Models;
using Microsoft.Extensions.DependencyInjection;

namespace StreamSpace.Tests.Chart;

/// <summary>
/// What lets the control plane and the web UI run as several replicas in the chart: two of each by default, rollouts
/// that never lower the ready count, a disruption budget, spreading over nodes and zones, the API's data port for
/// agents' data connections; and the optional Prometheus and Grafana objects.
/// </summary>
public sealed partial class ChartAvailabilityTests
{
    private const string Namespace = RenderedChart.Namespace;
    private const string ApiName = RenderedChart.Release + "-api";
    private const string WebName = RenderedChart.Release + "-ui";
    private const string AgentName = RenderedChart.Release + "-k8s-agent";

    [Fact]
    public async Task By_default_api_and_web_run_two_replicas_that_roll_with_none_unavailable_keep_one_through_disruptions_and_spread_over_nodes_and_zones()
    {
        var chart = await RenderedChart.LoadAsync(RenderedChart.DefaultCase);
        foreach (var name in new[] { ApiName, WebName })
        {
            var deployment = chart.Deployment(name);
            Assert.Equal(2, deployment.Spec.Replicas);
            Assert.Equal("RollingUpdate", deployment.Spec.Strategy.Type);
            Assert.Equal("0", deployment.Spec.Strategy.RollingUpdate.MaxUnavailable.Value);
            Assert.Equal("1", deployment.Spec.Strategy.RollingUpdate.MaxSurge.Value);
            Assert.Equal(30, deployment.Spec.Template.Spec.TerminationGracePeriodSeconds);

            var podLabels = deployment.Spec.Template.Metadata.Labels;
            var budget = chart.Single<V1PodDisruptionBudget>(name);
            Assert.Equal("1", budget.Spec.MinAvailable.Value);
            Assert.True(NetworkPolicies.Matches(budget.Spec.Selector, podLabels), $"the {name} budget selects its pods");
            Assert.All(chart.Workloads().Where(w => w.Name != name),
                other => Assert.False(NetworkPolicies.Matches(budget.Spec.Selector, other.PodLabels), $"the {name} budget selects {other.Name}"));

            var spread = deployment.Spec.Template.Spec.TopologySpreadConstraints;
            Assert.Equal(["kubernetes.io/hostname", "topology.kubernetes.io/zone"], spread.Select(c => c.TopologyKey).Order());
            Assert.All(spread, constraint =>
            {
                // A preference: a single-node cluster still schedules both replicas.
                Assert.Equal("ScheduleAnyway", constraint.WhenUnsatisfiable);
                Assert.Equal(1, constraint.MaxSkew);
                Assert.True(NetworkPolicies.Matches(constraint.LabelSelector, podLabels), $"{name}'s spread counts its own pods");
            });
        }

        // One agent id is one agent: it keeps its single replica and its Recreate rollout.
        Assert.Equal(1, chart.Deployment(AgentName).Spec.Replicas);
    }

    [Fact]
    public async Task One_replica_renders_no_disruption_budget_which_would_block_every_node_drain()
    {
        var single = await RenderedChart.TemplateAsync("--set", "api.replicaCount=1", "--set", "web.replicaCount=1");
        Assert.True(single.ExitCode == 0, single.StandardError);
        Assert.DoesNotContain("kind: PodDisruptionBudget", single.StandardOutput, StringComparison.Ordinal);

        var apiOnly = await RenderedChart.TemplateAsync("--set", "web.replicaCount=1");
        Assert.True(apiOnly.ExitCode == 0, apiOnly.StandardError);
        var budgets = KubernetesYaml.LoadAllFromString(apiOnly.StandardOutput, new Dictionary<string, Type>(PrometheusMonitor.TypeMap))
            .OfType<V1PodDisruptionBudget>().Select(b => b.Metadata.Name);
        Assert.Equal([ApiName], budgets);
    }

    [Fact]
    public async Task The_api_advertises_its_pod_ip_and_data_port_which_only_the_agent_and_other_api_pods_reach()
    {
        foreach (var name in new[] { RenderedChart.DefaultCase, RenderedChart.NetworkPolicyAndIngressCase })
        {
            var chart = await RenderedChart.LoadAsync(name);
            var api = chart.Container(ApiName);
            var env = api.Env.ToList();

            // POD_IP from the downward API, declared before REPLICA_ADDRESS, which Kubernetes expands from it.
            var podIp = env.FindIndex(e => e.Name == "POD_IP");
            Assert.Equal("status.podIP", env[podIp].ValueFrom.FieldRef.FieldPath);
            var address = env.FindIndex(e => e.Name == "REPLICA_ADDRESS");
            Assert.Equal("$(POD_IP)", env[address].Value);
            Assert.True(podIp < address, "POD_IP must come before REPLICA_ADDRESS for $(POD_IP) to expand");
            Assert.Equal("8001", Assert.Single(env, e => e.Name == "DATA_PORT").Value);
            Assert.Equal("5s", Assert.Single(env, e => e.Name == "SHUTDOWN_DRAIN_DELAY").Value);
            Assert.Equal(8001, Assert.Single(api.Ports, p => p.Name == "data").ContainerPort);
            // Agents dial each pod's own address: the Service stays on 8000 alone.
            Assert.DoesNotContain(chart.Single<V1Service>(ApiName).Spec.Ports, p => p.Port == 8001);

            var policies = chart.All<V1NetworkPolicy>().ToList();
            var pods = chart.Workloads().ToDictionary(w => w.Name, w => new PodIdentity(w.Name, Namespace, w.PodLabels));
            var web = pods[WebName];
            var stranger = new PodIdentity("stranger", Namespace, new Dictionary<string, string> { ["app"] = "stranger" });
            Assert.True(NetworkPolicies.Allows(policies, Namespace, pods[AgentName], pods[ApiName], 8001), $"{name}: agent → api:8001");
            Assert.True(NetworkPolicies.Allows(policies, Namespace, pods[ApiName], pods[ApiName], 8001), $"{name}: api → api:8001, the forward hop");
            Assert.False(NetworkPolicies.Allows(policies, Namespace, web, pods[ApiName], 8001), $"{name}: web → api:8001");
            Assert.False(NetworkPolicies.Allows(policies, Namespace, stranger, pods[ApiName], 8001), $"{name}: stranger → api:8001");
        }
    }

    [Fact]
    public async Task Metrics_values_render_monitors_for_the_api_and_agent_and_a_grafana_dashboard_of_streamspaces_metrics()
    {
        var plain = await RenderedChart.LoadAsync(RenderedChart.DefaultCase);
        Assert.Empty(plain.All<PrometheusMonitor>());
        Assert.DoesNotContain(plain.All<V1ConfigMap>(), c => c.Metadata.Labels?.ContainsKey("grafana_dashboard") == true);

        var chart = await RenderedChart.LoadAsync(RenderedChart.MetricsCase);
        var service = chart.Single<V1Service>(ApiName);
        var serviceMonitor = Assert.Single(chart.All<PrometheusMonitor>(), m => m.Kind == "ServiceMonitor");
        Assert.Equal("kube-prometheus-stack", serviceMonitor.Metadata.Labels["release"]);
        Assert.True(NetworkPolicies.Matches(serviceMonitor.Spec.Selector, service.Metadata.Labels), "the ServiceMonitor selects the API Service");
        var endpoint = Assert.Single(serviceMonitor.Spec.Endpoints!);
        Assert.Equal("/metrics", endpoint.Path);
        Assert.Equal("15s", endpoint.Interval);
        Assert.Contains(service.Spec.Ports, p => p.Name == endpoint.Port);

        var podMonitor = Assert.Single(chart.All<PrometheusMonitor>(), m => m.Kind == "PodMonitor");
        var agent = chart.Workloads().Single(w => w.Name == AgentName);
        Assert.True(NetworkPolicies.Matches(podMonitor.Spec.Selector, agent.PodLabels), "the PodMonitor selects the agent's pods");
        var agentEndpoint = Assert.Single(podMonitor.Spec.PodMetricsEndpoints!);
        Assert.Equal("/metrics", agentEndpoint.Path);
        Assert.Contains(chart.Container(AgentName).Ports, p => p.Name == agentEndpoint.Port);

        // Prometheus in the monitoring namespace may scrape the API; other pods there may not reach its data port.
        var prometheus = new PodIdentity("prometheus", "monitoring", new Dictionary<string, string> { ["app"] = "prometheus" });
        var api = new PodIdentity(ApiName, Namespace, chart.Workloads().Single(w => w.Name == ApiName).PodLabels);
        var policies = chart.All<V1NetworkPolicy>().ToList();
        Assert.True(NetworkPolicies.Allows(policies, Namespace, prometheus, api, 8000), "prometheus → api:8000");
        Assert.False(NetworkPolicies.Allows(policies, Namespace, prometheus, api, 8001), "prometheus → api:8001");

        // The dashboard: a ConfigMap Grafana's sidecar picks up, holding one valid dashboard of StreamSpace's metrics.
        var dashboard = Assert.Single(chart.All<V1ConfigMap>(), c => c.Metadata.Labels?.ContainsKey("grafana_dashboard") == true);
        Assert.Equal("1", dashboard.Metadata.Labels["grafana_dashboard"]);
        var json = JsonDocument.Parse(Assert.Single(dashboard.Data).Value).RootElement;
        Assert.False(string.IsNullOrEmpty(json.GetProperty("title").GetString()));
        var expressions = json.GetProperty("panels").EnumerateArray()
            .SelectMany(p => p.GetProperty("targets").EnumerateArray()).Select(t => t.GetProperty("expr").GetString()!).ToList();
        var metrics = expressions.SelectMany(e => MetricName().Matches(e).Select(m => m.Value)).ToHashSet();
        // Every metric the dashboard queries is one the API or the agent exports, under the name the exporter gives it.
        var exported = ExportedMetricNames();
        Assert.All(metrics, name => Assert.True(exported.Any(e => name == e || SeriesSuffixes.Any(suffix => name == e + suffix)),
            $"the dashboard queries {name}, which neither the API nor the agent exports ({string.Join(", ", exported)})"));
        foreach (var shown in new[]
        {
            "streamspace_sessions", "streamspace_session_start_duration_seconds_bucket", "streamspace_session_start_failures_total",
            "streamspace_viewers_open", "streamspace_tunnel_bytes_total", "streamspace_agents_connected",
            "streamspace_agent_heartbeat_handling_duration_seconds_bucket", "streamspace_agent_command_duration_seconds_bucket",
        })
        {
            Assert.Contains(shown, metrics);
        }
    }

    private static readonly string[] SeriesSuffixes = ["_bucket", "_sum", "_count"];

    /// <summary>
    /// The Prometheus names of ApiMetrics' and AgentMetrics' instruments, as OpenTelemetry's exporter spells them: the
    /// unit's suffix (s → _seconds, By → _bytes; {…} annotations add none), then _total for counters.
    /// </summary>
    private static HashSet<string> ExportedMetricNames()
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, _) =>
        {
            if (instrument.Meter.Name is StreamSpace.Api.Infrastructure.Metrics.ApiMetrics.MeterName or StreamSpace.Agent.Metrics.AgentMetrics.MeterName)
            {
                var unit = instrument.Unit switch { "s" => "_seconds", "By" => "_bytes", _ => "" };
                var total = instrument.GetType().Name.StartsWith("Counter", StringComparison.Ordinal) ? "_total" : "";
                lock (names)
                {
                    names.Add(instrument.Name + unit + total);
                }
            }
        };
        listener.Start();
        var services = new ServiceCollection().AddMetrics()
            .AddSingleton<StreamSpace.Api.Infrastructure.Metrics.ApiMetrics>()
            .AddSingleton<StreamSpace.Agent.Metrics.AgentMetrics>();
        using var provider = services.BuildServiceProvider();
        provider.GetRequiredService<StreamSpace.Api.Infrastructure.Metrics.ApiMetrics>();
        provider.GetRequiredService<StreamSpace.Agent.Metrics.AgentMetrics>();
        return names;
    }

    [GeneratedRegex(@"\bstreamspace_[a-z_]+\b")]
    private static partial Regex MetricName();
}
