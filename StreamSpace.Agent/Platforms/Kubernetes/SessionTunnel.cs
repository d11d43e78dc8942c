namespace StreamSpace.Agent.Platforms.Kubernetes;

/// <summary>How the VNC tunnel reaches a session pod (SESSION_TUNNEL).</summary>
public enum SessionTunnel
{
    /// <summary>PodIp when the agent runs in the cluster (in-cluster service account), else PortForward.</summary>
    Auto,

    /// <summary>Dial the pod IP: needs the agent inside the cluster network (and a NetworkPolicy that lets it in).</summary>
    PodIp,

    /// <summary>Through the API server's pods/portforward: works from anywhere the API server is reachable, at the API server's cost.</summary>
    PortForward,
}
