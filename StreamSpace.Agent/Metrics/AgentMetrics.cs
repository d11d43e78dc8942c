using System.Diagnostics.Metrics;

namespace StreamSpace.Agent.Metrics;

/// <summary>
/// Every measurement the agent exports, in one place: served at <c>/metrics</c> on AGENT_HEALTH_PORT (Prometheus) and,
/// with the service defaults, sent to the Aspire dashboard (OTLP). Units let the exporter append <c>_bytes</c> and
/// <c>_total</c>; names do not repeat them. No label carries per-user data.
/// </summary>
public sealed class AgentMetrics
{
    public const string MeterName = "StreamSpace.Agent";

    /// <summary>The <c>path</c> label of a per-viewer data connection (tunnel v2).</summary>
    public const string RawPath = "raw";

    private readonly UpDownCounter<long> dataConnections;
    private readonly Counter<long> relayedBytes;
    private readonly Counter<long> controlReconnects;
    private Func<bool> controlConnected = () => false;

    public AgentMetrics(IMeterFactory meters)
    {
        var meter = meters.Create(MeterName);
        meter.CreateObservableGauge("streamspace_agent_control_connected", () => controlConnected() ? 1 : 0, "{connection}",
            "1 while the agent's control connection to the control plane is up, else 0.");
        dataConnections = meter.CreateUpDownCounter<long>("streamspace_agent_data_connections", "{connection}",
            "Viewer data connections open, by path (raw, websocket, mux) and whether splice(2) moves their bytes.");
        relayedBytes = meter.CreateCounter<long>("streamspace_agent_relayed", "By",
            "VNC bytes the agent moved (spliced or copied) between a session and its viewers, to the viewer and from it.");
        controlReconnects = meter.CreateCounter<long>("streamspace_agent_control_reconnects", "{reconnect}",
            "Reconnects of the control connection, by cause (e.g. replica_stopping, reset, refused, unauthorized).");
    }

    /// <summary>Where <c>streamspace_agent_control_connected</c> reads whether the control connection is up, at each scrape.</summary>
    public void ObserveControlConnection(Func<bool> connected) => controlConnected = connected;

    /// <summary>A viewer's data connection opened; <paramref name="path"/> is raw, websocket or mux.</summary>
    public void DataConnectionOpened(string path, bool spliced) => dataConnections.Add(1, Path(path), Splice(spliced));

    /// <summary>A data connection <see cref="DataConnectionOpened"/> counted closed; the same arguments.</summary>
    public void DataConnectionClosed(string path, bool spliced) => dataConnections.Add(-1, Path(path), Splice(spliced));

    /// <summary>Bytes moved from the session's VNC server to a viewer.</summary>
    public void BytesToViewer(long bytes) => relayedBytes.Add(bytes, new KeyValuePair<string, object?>("direction", "to_viewer"));

    /// <summary>Bytes moved from a viewer to the session's VNC server.</summary>
    public void BytesFromViewer(long bytes) => relayedBytes.Add(bytes, new KeyValuePair<string, object?>("direction", "from_viewer"));

    /// <summary>The control connection is being made again; <paramref name="cause"/> is a short fixed word, never a message.</summary>
    public void ControlReconnected(string cause) => controlReconnects.Add(1, new KeyValuePair<string, object?>("cause", cause));

    private static KeyValuePair<string, object?> Path(string path) => new("path", path);

    private static KeyValuePair<string, object?> Splice(bool spliced) => new("splice", spliced ? "true" : "false");
}
