namespace StreamSpace.Tests.Infrastructure;

/// <summary>
/// The one HAProxy configuration the replica tests and the hub bench put in front of API replicas, as a production
/// balancer is set up: HTTP mode (WebSocket upgrades pass through as tunnels), round robin with no stickiness, health
/// checks on <c>/health</c>, and a refused or 503 dial retried on another server. The bench links this file.
/// </summary>
public static class HaproxyConfig
{
    /// <param name="bindPorts">Loopback ports the frontend listens on.</param>
    /// <param name="serverPorts">The replicas' loopback ports.</param>
    /// <param name="maxConnections">Connections the process accepts in all (global) and per frontend.</param>
    /// <param name="checkInterval">How often each replica's <c>/health</c> is asked, as HAProxy writes a time ("500ms").</param>
    /// <param name="downAfter">Failed checks in a row that mark a replica down.</param>
    /// <param name="checkTimeout">How long one check may take, or null for HAProxy's default (the connect timeout).</param>
    public static string Render(IReadOnlyList<int> bindPorts, IReadOnlyList<int> serverPorts, int maxConnections,
        string checkInterval, int downAfter, string? checkTimeout = null) => $"""
        global
          maxconn {maxConnections}
        defaults
          mode http
          maxconn {maxConnections}
          timeout connect 1s
        {(checkTimeout is null ? "" : $"  timeout check {checkTimeout}\n")}  timeout client 1h
          timeout server 1h
          timeout tunnel 1h
          option redispatch
          retries 3
          retry-on conn-failure empty-response 503
        frontend fe
        {string.Join("\n", bindPorts.Select(p => $"  bind 127.0.0.1:{p}"))}
          default_backend api
        backend api
          balance roundrobin
          option httpchk GET /health
          default-server check inter {checkInterval} fall {downAfter} rise 2
        {string.Join("\n", serverPorts.Select((p, i) => $"  server r{i} 127.0.0.1:{p}"))}

        """;
}
