using System.Text.Json.Serialization;
using k8s;
using k8s.Models;

namespace StreamSpace.Tests.Chart;

/// <summary>
/// The Prometheus Operator's ServiceMonitor and PodMonitor, reduced to the fields the chart renders, so the rendered
/// chart still parses strictly: a misspelt field fails the parse.
/// </summary>
public sealed class PrometheusMonitor : IKubernetesObject<V1ObjectMeta>
{
    public const string Group = "monitoring.coreos.com/v1";

    public static readonly IReadOnlyDictionary<string, Type> TypeMap = new Dictionary<string, Type>
    {
        [$"{Group}/ServiceMonitor"] = typeof(PrometheusMonitor),
        [$"{Group}/PodMonitor"] = typeof(PrometheusMonitor),
    };

    [JsonPropertyName("apiVersion")]
    public string ApiVersion { get; set; } = "";

    [JsonPropertyName("kind")]
    public string Kind { get; set; } = "";

    [JsonPropertyName("metadata")]
    public V1ObjectMeta Metadata { get; set; } = new();

    [JsonPropertyName("spec")]
    public MonitorSpec Spec { get; set; } = new();
}

public sealed class MonitorSpec
{
    [JsonPropertyName("selector")]
    public V1LabelSelector Selector { get; set; } = new();

    /// <summary>A ServiceMonitor's: ports of the selected Services.</summary>
    [JsonPropertyName("endpoints")]
    public List<MonitorEndpoint>? Endpoints { get; set; }

    /// <summary>A PodMonitor's: container ports of the selected pods.</summary>
    [JsonPropertyName("podMetricsEndpoints")]
    public List<MonitorEndpoint>? PodMetricsEndpoints { get; set; }
}

public sealed class MonitorEndpoint
{
    [JsonPropertyName("port")]
    public string Port { get; set; } = "";

    [JsonPropertyName("path")]
    public string Path { get; set; } = "";

    [JsonPropertyName("interval")]
    public string? Interval { get; set; }
}
