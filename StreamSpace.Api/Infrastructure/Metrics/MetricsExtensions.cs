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
            // No cached scrape: the exporter's default answers for 300 ms with the previous scrape, so a change (a launch
            // that just ran) could be missing from the next read. Prometheus scrapes every 15–30 s; a fresh answer is cheap.
            .AddPrometheusExporter(exporter => exporter.ScrapeResponseCacheDurationMilliseconds = 0));
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
