using System.Net.WebSockets;

namespace StreamSpace.Contracts;

/// <summary>
/// WebSocket close codes on the agent's control socket; 4000–4999 are the application's own. Here, not in the API,
/// because the agent acts on some of them (<see cref="ReplicaStopping"/>: reconnect at once).
/// </summary>
public static class AgentCloseCodes
{
    public const WebSocketCloseStatus MalformedFrame = WebSocketCloseStatus.PolicyViolation;
    public const WebSocketCloseStatus Replaced = (WebSocketCloseStatus)4001;
    public const WebSocketCloseStatus Revoked = (WebSocketCloseStatus)4002;
    public const WebSocketCloseStatus HeartbeatsMissed = (WebSocketCloseStatus)4003;
    public const WebSocketCloseStatus UnsupportedProtocol = (WebSocketCloseStatus)4004;

    /// <summary>The API replica is stopping (a rolling update): reconnect after 0–1 s, through the balancer, to another one. Not a problem.</summary>
    public const WebSocketCloseStatus ReplicaStopping = (WebSocketCloseStatus)4005;
}
