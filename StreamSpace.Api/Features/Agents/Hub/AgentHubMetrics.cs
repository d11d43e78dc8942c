using System.Diagnostics.Metrics;

namespace StreamSpace.Api.Features.Agents.Hub;

/// <summary>
/// The hub's own measurements, exported with the other StreamSpace.* meters (OpenTelemetry) and readable live with
/// <c>dotnet-counters monitor --counters StreamSpace.Api.AgentHub</c>. Heartbeat handling time is measured here, on the
/// server, because the protocol has no heartbeat answer a client could time.
/// </summary>
public sealed class AgentHubMetrics
{
    public const string MeterName = "StreamSpace.Api.AgentHub";

    private readonly Histogram<double> heartbeatDuration;
    private readonly Histogram<double> helloDuration;

    public AgentHubMetrics(IMeterFactory meters)
    {
        var meter = meters.Create(MeterName);
        heartbeatDuration = meter.CreateHistogram<double>("streamspace.agent_hub.heartbeat.duration", "ms",
            "From a parsed heartbeat frame to its committed database write.");
        helloDuration = meter.CreateHistogram<double>("streamspace.agent_hub.hello.duration", "ms",
            "From the start of a hello's database work (after any wait for a handshake slot) to the welcome being queued.");
    }

    public void HeartbeatHandled(TimeSpan elapsed) => heartbeatDuration.Record(elapsed.TotalMilliseconds);

    public void HelloHandled(TimeSpan elapsed) => helloDuration.Record(elapsed.TotalMilliseconds);
}
