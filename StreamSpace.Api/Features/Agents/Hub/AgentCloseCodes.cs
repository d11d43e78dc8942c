using System.Net.WebSockets;

namespace StreamSpace.Api.Features.Agents.Hub;

/// <summary>WebSocket close codes the hub uses; 4000–4999 are the application's own.</summary>
public static class AgentCloseCodes
{
    public const WebSocketCloseStatus MalformedFrame = WebSocketCloseStatus.PolicyViolation;
    public const WebSocketCloseStatus Replaced = (WebSocketCloseStatus)4001;
    public const WebSocketCloseStatus Revoked = (WebSocketCloseStatus)4002;
    public const WebSocketCloseStatus HeartbeatsMissed = (WebSocketCloseStatus)4003;
    public const WebSocketCloseStatus UnsupportedProtocol = (WebSocketCloseStatus)4004;
}
