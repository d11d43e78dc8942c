using System.Diagnostics.Metrics;
using StreamSpace.Api.Infrastructure.Metrics;

namespace StreamSpace.Api.Features.Agents.Hub;

/// <summary>
/// The hub's own measurements, exported with the other StreamSpace.* meters (OpenTelemetry) and readable live with
/// <c>dotnet-counters monitor --counters StreamSpace.Api.AgentHub</c>. Heartbeat handling time is measured here, on the
/// server, because the protocol has no heartbeat answer a client could time. Its millisecond instruments feed the hub
/// bench (dotnet-counters); the same figures go to <see cref="ApiMetrics"/> under their Prometheus names.
/// </summary>
public sealed class AgentHubMetrics
{
    public const string MeterName = "StreamSpace.Api.AgentHub";

    private readonly Histogram<double> heartbeatDuration;
    private readonly Histogram<double> helloDuration;

    private readonly ApiMetrics api;
    private readonly TimeProvider time;

    public AgentHubMetrics(IMeterFactory meters, ApiMetrics api, TimeProvider time)
    {
        this.api = api;
        this.time = time;
        var meter = meters.Create(MeterName);
        heartbeatDuration = meter.CreateHistogram<double>("streamspace.agent_hub.heartbeat.duration", "ms",
            "From a parsed heartbeat frame to its committed database write.");
        helloDuration = meter.CreateHistogram<double>("streamspace.agent_hub.hello.duration", "ms",
            "From the start of a hello's database work (after any wait for a handshake slot) to the welcome being queued.");
    }

    public void HeartbeatHandled(TimeSpan elapsed)
    {
        heartbeatDuration.Record(elapsed.TotalMilliseconds);
        api.HeartbeatHandled(elapsed);
    }

    /// <summary>The agent acknowledged a command (<paramref name="stage"/> "ack") or sent its result ("result").</summary>
    public void CommandAnswered(string stage, Guid commandId) => api.CommandAnswered(stage, commandId, time);

    public void HelloHandled(TimeSpan elapsed) => helloDuration.Record(elapsed.TotalMilliseconds);
}
