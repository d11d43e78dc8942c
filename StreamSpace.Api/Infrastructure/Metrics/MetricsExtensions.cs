using OpenTelemetry.Metrics;

namespace StreamSpace.Api.Infrastructure.Metrics;

public static class MetricsExtensions
{
    public const string ScrapePath = "/metrics";

    /// <summary><see cref="ApiMetrics"/>, and the Prometheus exporter beside the OTLP one the service defaults set up.</summary>
    public static IHostApplicationBuilder AddStreamSpaceMetrics(this IHostApplicationBuilder builder)
    {
        builder.Services.AddSingleton<ApiMetrics>();
        // As instrumentation, so the instruments exist from the first scrape on, whoever uses them first.
        builder.Services.AddOpenTelemetry().WithMetrics(metrics => metrics.AddMeter(ApiMetrics.MeterName)
            .AddInstrumentation(sp => sp.GetRequiredService<ApiMetrics>())
            .AddPrometheusExporter());
        return builder;
    }

    /// <summary>
    /// <c>/metrics</c> without authentication, as Prometheus scrapes it inside the cluster: the ingress does not route it
    /// (only /api, /vnc and /agent reach the API), and no label carries per-user data.
    /// </summary>
    public static WebApplication MapStreamSpaceMetrics(this WebApplication app)
    {
        app.MapPrometheusScrapingEndpoint(ScrapePath).DisableHttpMetrics();
        return app;
    }
}
