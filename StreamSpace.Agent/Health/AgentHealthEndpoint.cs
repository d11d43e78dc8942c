using System.Net;
using System.Text.Json;
using StreamSpace.Agent.ControlPlane;

namespace StreamSpace.Agent.Health;

/// <summary>
/// Probes for Kubernetes on AGENT_HEALTH_PORT: <c>/alive</c> while the process runs, and <c>/health</c> ready only
/// while the agent is connected to the control plane. When it is not, the body gives the reason, so the probe's
/// failure in the pod's events says why the agent reads offline.
/// </summary>
public sealed class AgentHealthEndpoint(AgentSettings settings, ControlPlaneClient client, ILogger<AgentHealthEndpoint> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (settings.HealthPort == 0)
        {
            return;
        }

        using var listener = new HttpListener();
        listener.Prefixes.Add($"http://+:{settings.HealthPort}/");
        listener.Start();
        logger.LogInformation("Health endpoints on port {Port}: /alive and /health", settings.HealthPort);
        using var registration = stoppingToken.Register(listener.Stop);
        while (!stoppingToken.IsCancellationRequested)
        {
            HttpListenerContext context;
            try
            {
                context = await listener.GetContextAsync();
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException)
            {
                break;
            }

            // Each probe on its own: a slow or vanished prober must neither hold up the next nor stop the agent.
            _ = AnswerAsync(context, stoppingToken);
        }
    }

    private async Task AnswerAsync(HttpListenerContext context, CancellationToken stoppingToken)
    {
        var (status, body) = context.Request.Url?.AbsolutePath switch
        {
            "/alive" => (200, Body("healthy", null)),
            "/health" when client.IsConnected => (200, Body("healthy", null)),
            "/health" => (503, Body("unhealthy", client.LastProblem ?? "not connected to the control plane yet")),
            _ => (404, Body("unknown path", null)),
        };
        try
        {
            context.Response.StatusCode = status;
            context.Response.ContentType = "application/json";
            await context.Response.OutputStream.WriteAsync(body, stoppingToken);
            context.Response.Close();
        }
        catch (Exception e) when (e is HttpListenerException or IOException or ObjectDisposedException or OperationCanceledException)
        {
            // The prober hung up (its timeout passed) or the agent is stopping: nobody is left to answer.
            logger.LogDebug("A health probe went away before its answer: {Reason}", e.Message);
            context.Response.Abort();
        }
    }

    private static byte[] Body(string status, string? reason) =>
        JsonSerializer.SerializeToUtf8Bytes(reason is null
            ? new Dictionary<string, string> { ["service"] = "streamspace-agent", ["status"] = status }
            : new Dictionary<string, string> { ["service"] = "streamspace-agent", ["status"] = status, ["reason"] = reason });
}
