using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Security.Authentication;

namespace StreamSpace.Agent.ControlPlane;

/// <summary>Turns a failed connect into the cause an operator can act on, as the troubleshooting guide names them.</summary>
public static class ConnectionFailure
{
    public static string Describe(Exception error, HttpStatusCode? status, Uri url)
    {
        if (status is HttpStatusCode.Unauthorized)
        {
            return "401 Unauthorized: AGENT_ID or AGENT_KEY is wrong, or the credential was revoked";
        }

        if (status is HttpStatusCode.NotFound)
        {
            return $"404 Not Found: nothing serves {url.AbsolutePath}; the agent hub is at /agent/ws";
        }

        if (status is { } other && other != HttpStatusCode.SwitchingProtocols)
        {
            return $"WebSocket handshake failed with HTTP {(int)other}";
        }

        for (var e = error; e is not null; e = e.InnerException)
        {
            switch (e)
            {
                case SocketException { SocketErrorCode: SocketError.HostNotFound or SocketError.TryAgain or SocketError.NoData }:
                    return $"DNS: cannot resolve {url.Host}";
                case SocketException { SocketErrorCode: SocketError.ConnectionRefused }:
                    return $"connection refused by {url.Host}:{url.Port}: is the API running, and does no NetworkPolicy block agent → api?";
                case SocketException { SocketErrorCode: SocketError.TimedOut } or TimeoutException or TaskCanceledException:
                    return $"timed out connecting to {url.Host}:{url.Port}";
                case AuthenticationException tls:
                    return $"TLS handshake failed: {tls.Message}";
                case SocketException socket:
                    return $"network error: {socket.Message}";
            }
        }

        return error is WebSocketException ws ? $"WebSocket error: {ws.Message}" : error.Message;
    }
}
