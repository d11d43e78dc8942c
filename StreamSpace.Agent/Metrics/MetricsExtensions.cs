using OpenTelemetry.Metrics;
using StreamSpace.Agent.ControlPlane;

namespace StreamSpace.Agent.Metrics;

public static class MetricsExtensions
{
    public const string ScrapePath = "/metrics";

    /// <summary>
    /// <see cref="AgentMetrics"/>, and with AGENT_HEALTH_PORT set, Prometheus' <c>/metrics</c> on that port beside
    /// <c>/alive</c> and <c>/health</c> (the exporter's listener takes only the <c>/metrics</c> prefix of the port).
    /// </summary>
    public static IServiceCollection AddAgentMetrics(this IServiceCollection services, AgentSettings settings)
    {
        services.AddSingleton<AgentMetrics>();
        // As instrumentation, so the instruments exist from the first scrape on, whoever uses them first.
        var builder = services.AddOpenTelemetry().WithMetrics(metrics => metrics.AddMeter(AgentMetrics.MeterName)
            .AddInstrumentation(sp =>
            {
                var agentMetrics = sp.GetRequiredService<AgentMetrics>();
                var client = sp.GetRequiredService<ControlPlaneClient>();
                agentMetrics.ObserveControlConnection(() => client.IsConnected);
                return agentMetrics;
            }));
        if (settings.HealthPort != 0)
        {
            builder.WithMetrics(metrics => metrics.AddPrometheusHttpListener(listener =>
            {
                listener.Port = settings.HealthPort;
                listener.ScrapeEndpointPath = ScrapePath;
                // Every address, as the health listener binds (Prometheus comes from the pod network); Host takes no '+'.
                listener.ConfigureHttpListener = (_, http) =>
                {
                    http.Prefixes.Clear();
                    http.Prefixes.Add($"http://+:{settings.HealthPort}{ScrapePath}/");
                };
            }));
        }

        return services;
    }
}
