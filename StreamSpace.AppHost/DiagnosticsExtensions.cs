using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace StreamSpace.AppHost;

/// <summary>The dashboard's view of <c>GET /api/v1/admin/diagnostics</c>: a resource with no process, only health.</summary>
public sealed class DiagnosticsResource(string name) : Resource(name);

public static class DiagnosticsExtensions
{
    private const string HealthCheckKey = "streamspace-diagnostics";

    /// <summary>
    /// Adds a "diagnostics" row to the dashboard: healthy while every check of the API's diagnostics passes, degraded
    /// with warnings, unhealthy naming the failing checks. It is its own resource, not a health check of the API's,
    /// because the agent waits for the API to be healthy, and the diagnostics look for that agent.
    /// </summary>
    public static IResourceBuilder<DiagnosticsResource> AddStreamSpaceDiagnostics(this IDistributedApplicationBuilder builder,
        IResourceBuilder<ProjectResource> api, IResourceBuilder<ParameterResource> adminPassword)
    {
        var check = new DiagnosticsHealthCheck(api.GetEndpoint("http"), adminPassword.Resource);
        builder.Services.AddHealthChecks().AddCheck(HealthCheckKey, check);
        var diagnostics = builder.AddResource(new DiagnosticsResource("diagnostics"))
            .WithInitialState(new CustomResourceSnapshot { ResourceType = "Diagnostics", State = KnownResourceStates.Waiting, Properties = [] })
            .WithHealthCheck(HealthCheckKey)
            .ExcludeFromManifest();

        // Health is checked only for running resources: this one runs once the API serves.
        builder.Eventing.Subscribe<ResourceReadyEvent>(api.Resource, async (ready, _) =>
            await ready.Services.GetRequiredService<ResourceNotificationService>().PublishUpdateAsync(diagnostics.Resource,
                snapshot => snapshot with { State = KnownResourceStates.Running, StartTimeStamp = DateTime.UtcNow }));
        return diagnostics;
    }

    private sealed class DiagnosticsHealthCheck(EndpointReference api, ParameterResource adminPassword) : IHealthCheck, IDisposable
    {
        private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };
        private readonly HttpClient http = new() { Timeout = TimeSpan.FromSeconds(20) };
        private (string Token, DateTimeOffset ExpiresAt)? login;

        public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
        {
            try
            {
                var report = await DiagnoseAsync(cancellationToken);
                var failing = report.Checks.Where(c => c.Status != "ok").Select(c => $"{c.Status}: {c.Title} ({c.Evidence})").ToList();
                var summary = failing.Count == 0 ? $"all {report.Checks.Count} checks pass" : string.Join("; ", failing);
                return report.Status switch
                {
                    "ok" => HealthCheckResult.Healthy(summary),
                    "warn" => HealthCheckResult.Degraded(summary),
                    _ => HealthCheckResult.Unhealthy(summary),
                };
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException or JsonException)
            {
                return HealthCheckResult.Unhealthy($"could not run the API's diagnostics: {e.Message}");
            }
        }

        private async Task<Report> DiagnoseAsync(CancellationToken cancellationToken)
        {
            var baseUrl = new Uri(api.Url);
            // One login per token lifetime: logging in at every check would fill the rate limit.
            if (login is not { } current || current.ExpiresAt < DateTimeOffset.UtcNow.AddMinutes(5))
            {
                var password = await adminPassword.GetValueAsync(cancellationToken);
                using var response = await http.PostAsJsonAsync(new Uri(baseUrl, "/api/v1/auth/login"), new { username = "admin", password }, Json, cancellationToken);
                response.EnsureSuccessStatusCode();
                var issued = await response.Content.ReadFromJsonAsync<Login>(Json, cancellationToken) ?? throw new JsonException("empty login response");
                current = (issued.Token, issued.ExpiresAt);
                login = current;
            }

            using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(baseUrl, "/api/v1/admin/diagnostics"));
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", current.Token);
            using var answer = await http.SendAsync(request, cancellationToken);
            if (answer.StatusCode == System.Net.HttpStatusCode.Unauthorized)
            {
                login = null;
            }

            answer.EnsureSuccessStatusCode();
            return await answer.Content.ReadFromJsonAsync<Report>(Json, cancellationToken) ?? throw new JsonException("empty diagnostics report");
        }

        public void Dispose() => http.Dispose();

        private sealed record Login(string Token, DateTimeOffset ExpiresAt);

        private sealed record Check(string Id, string Title, string Status, string Evidence);

        private sealed record Report(string Status, IReadOnlyList<Check> Checks);
    }
}
