using System.Diagnostics.Metrics;

namespace StreamSpace.Api.Infrastructure.Metrics;

/// <summary>
/// Every measurement the API exports, in one place: served at <c>/metrics</c> (Prometheus) and sent to the Aspire
/// dashboard (OTLP). Instruments carry units, so the Prometheus exporter appends <c>_seconds</c> and <c>_bytes</c> itself
/// (and <c>_total</c> to counters); their names must not repeat them. Labels never carry per-user data (no user ids,
/// names or addresses): a scrape is readable by whoever runs Prometheus.
/// </summary>
public sealed class ApiMetrics
{
    public const string MeterName = "StreamSpace.Api";

    /// <summary>The bucketed reasons of <c>streamspace_session_start_failures_total</c>: a fixed set, so a label never grows.</summary>
    public static class StartFailureReasons
    {
        public const string Timeout = "timeout";
        public const string ImagePull = "image_pull";
        public const string Vnc = "vnc";
        public const string AgentLost = "agent_lost";
        public const string Other = "other";
    }

    /// <summary>The <c>path</c> label of <c>streamspace_viewers_open</c>: how the viewer's bytes reach the agent.</summary>
    public static class ViewerPaths
    {
        public const string Raw = "raw";
        public const string WebSocket = "websocket";
        public const string Mux = "mux";
        public const string Forwarded = "forwarded";
    }

    // Seconds, from a local start (a quarter second) to a Kubernetes image pull (minutes).
    private static readonly double[] StartBuckets = [0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300];

    // Seconds, for work that takes milliseconds: a heartbeat's database write, a command's round trip.
    private static readonly double[] LatencyBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

    private readonly Histogram<double> sessionStartDuration;
    private readonly Counter<long> sessionStartFailures;
    private readonly UpDownCounter<long> viewersOpen;
    private readonly Counter<long> tunnelBytes;
    private readonly Histogram<double> viewerOpenDuration;
    private readonly Histogram<double> heartbeatHandlingDuration;
    private readonly Histogram<double> commandDuration;
    private readonly Counter<long> dataConnectionsForwarded;
    private readonly Meter meter;
    private Func<IEnumerable<Measurement<long>>> sessionCounts = () => [];
    private Func<int> agentsConnected = () => 0;

    public ApiMetrics(IMeterFactory meters)
    {
        meter = meters.Create(MeterName);
        meter.CreateObservableGauge("streamspace_sessions", () => sessionCounts(), "{session}",
            "Sessions by state and platform, across the whole control plane (every replica reports the same; use max).");
        sessionStartDuration = meter.CreateHistogram("streamspace_session_start_duration", "s",
            "From the launch request to the session running.", advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = StartBuckets });
        sessionStartFailures = meter.CreateCounter<long>("streamspace_session_start_failures", "{session}",
            "Launches that ended failed before the session ran, by bucketed reason.");
        viewersOpen = meter.CreateUpDownCounter<long>("streamspace_viewers_open", "{viewer}",
            "VNC viewers open on this replica, by how their bytes reach the agent.");
        tunnelBytes = meter.CreateCounter<long>("streamspace_tunnel", "By",
            "VNC bytes relayed by this replica, to the viewer (the session's screen) and from it (input).");
        viewerOpenDuration = meter.CreateHistogram("streamspace_viewer_open_duration", "s",
            "From a viewer's ticket redeemed to its data connection up.", advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = LatencyBuckets });
        meter.CreateObservableGauge("streamspace_agents_connected", () => agentsConnected(), "{agent}",
            "Agents whose hub connection this replica holds.");
        heartbeatHandlingDuration = meter.CreateHistogram("streamspace_agent_heartbeat_handling_duration", "s",
            "From a parsed heartbeat to its committed database write.", advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = LatencyBuckets });
        commandDuration = meter.CreateHistogram("streamspace_agent_command_duration", "s",
            "From a command's creation to the agent's ack (stage=ack) or result (stage=result).",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = LatencyBuckets });
        dataConnectionsForwarded = meter.CreateCounter<long>("streamspace_data_connections_forwarded", "{connection}",
            "Agent data connections that arrived at this replica for another one and were forwarded to it.");
    }

    /// <summary>Where <c>streamspace_sessions</c> reads its figures at each scrape (the latest periodic count).</summary>
    public void ObserveSessionCounts(Func<IEnumerable<Measurement<long>>> counts) => sessionCounts = counts;

    /// <summary>Where <c>streamspace_agents_connected</c> reads this replica's hub connections at each scrape.</summary>
    public void ObserveAgentsConnected(Func<int> count) => agentsConnected = count;

    /// <summary>A launch reached running; <paramref name="elapsed"/> is from its creation.</summary>
    public void SessionStarted(string platform, TimeSpan elapsed) =>
        sessionStartDuration.Record(elapsed.TotalSeconds, new KeyValuePair<string, object?>("platform", platform));

    /// <summary>A launch failed before it ran, for the reason the session shows (bucketed, never the text itself).</summary>
    public void SessionStartFailed(string? failureReason) =>
        sessionStartFailures.Add(1, new KeyValuePair<string, object?>("reason", BucketOf(failureReason)));

    /// <summary>A viewer opened on this replica; <paramref name="path"/> is one of <see cref="ViewerPaths"/>.</summary>
    public void ViewerOpened(string path, TimeSpan elapsed)
    {
        viewersOpen.Add(1, new KeyValuePair<string, object?>("path", path));
        viewerOpenDuration.Record(elapsed.TotalSeconds);
    }

    /// <summary>A viewer <see cref="ViewerOpened"/> counted closed; the same <paramref name="path"/>.</summary>
    public void ViewerClosed(string path) => viewersOpen.Add(-1, new KeyValuePair<string, object?>("path", path));

    /// <summary>Bytes the relay sent to a viewer (the session's screen).</summary>
    public void TunnelBytesToViewer(long bytes) => tunnelBytes.Add(bytes, new KeyValuePair<string, object?>("direction", "to_viewer"));

    /// <summary>Bytes the relay took from a viewer (keyboard and mouse).</summary>
    public void TunnelBytesFromViewer(long bytes) => tunnelBytes.Add(bytes, new KeyValuePair<string, object?>("direction", "from_viewer"));

    /// <summary>A data connection arrived here for another replica and was forwarded to it.</summary>
    public void DataConnectionForwarded() => dataConnectionsForwarded.Add(1);

    public void HeartbeatHandled(TimeSpan elapsed) => heartbeatHandlingDuration.Record(elapsed.TotalSeconds);

    /// <summary>
    /// An agent acknowledged (<paramref name="stage"/> "ack") or answered ("result") a command. The time runs from the
    /// command's creation, read from its id (a UUIDv7 carries its creation in milliseconds), so no lookup is needed.
    /// </summary>
    public void CommandAnswered(string stage, Guid commandId, TimeProvider time)
    {
        if (CreatedAt(commandId) is { } created && time.GetUtcNow() - created is { } elapsed && elapsed >= TimeSpan.Zero)
        {
            commandDuration.Record(elapsed.TotalSeconds, new KeyValuePair<string, object?>("stage", stage));
        }
    }

    /// <summary>A failure reason's bucket. Reasons are free text from agents and platforms; these are the words they use.</summary>
    public static string BucketOf(string? failureReason) => failureReason switch
    {
        null => StartFailureReasons.Other,
        _ when Has(failureReason, "image pull") => StartFailureReasons.ImagePull,
        _ when Has(failureReason, "did not answer") || Has(failureReason, "gave up after") || Has(failureReason, "timed out") => StartFailureReasons.Timeout,
        _ when Has(failureReason, "VNC") => StartFailureReasons.Vnc,
        _ when Has(failureReason, "pod missing") || Has(failureReason, "process missing") || Has(failureReason, "were gone") => StartFailureReasons.AgentLost,
        _ => StartFailureReasons.Other,
    };

    private static bool Has(string text, string word) => text.Contains(word, StringComparison.OrdinalIgnoreCase);

    private static DateTimeOffset? CreatedAt(Guid id)
    {
        Span<byte> bytes = stackalloc byte[16];
        id.TryWriteBytes(bytes, bigEndian: true, out _);
        if (bytes[6] >> 4 != 7)
        {
            return null;
        }

        long milliseconds = 0;
        for (var i = 0; i < 6; i++)
        {
            milliseconds = (milliseconds << 8) | bytes[i];
        }

        return DateTimeOffset.FromUnixTimeMilliseconds(milliseconds);
    }
}
