using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using StreamSpace.Agent.ControlPlane;
using StreamSpace.Contracts;

namespace StreamSpace.Agent.Doctor;

/// <summary>
/// `StreamSpace.Agent doctor`: checks the way to the control plane step by step, from the agent's side — DNS, TCP,
/// the WebSocket path, the key — and names the likely cause and fix of the first step that fails.
/// </summary>
public static class AgentDoctor
{
    public static async Task<int> RunAsync(AgentSettings settings, TextWriter output)
    {
        var (url, change) = AgentSettings.NormalizeControlPlaneUrl(settings.ControlPlaneUrl);
        await output.WriteLineAsync($"Agent {settings.AgentId} → {url}{(change is null ? "" : $" (normalised: {change})")}");

        IPAddress[] addresses;
        try
        {
            addresses = await Dns.GetHostAddressesAsync(url.Host);
            await Report(output, true, "DNS", $"{url.Host} resolves to {string.Join(", ", addresses.Select(a => a.ToString()))}");
        }
        catch (SocketException e)
        {
            return await Report(output, false, "DNS", $"{url.Host} does not resolve ({e.SocketErrorCode})",
                "Check the host in CONTROL_PLANE_URL; in the cluster it is the API service, e.g. ws://streamspace-api:8000/agent/ws.");
        }

        try
        {
            using var tcp = new TcpClient();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await tcp.ConnectAsync(url.Host, url.Port, timeout.Token);
            await Report(output, true, "TCP", $"{url.Host}:{url.Port} accepts connections");
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException)
        {
            return await Report(output, false, "TCP", $"{url.Host}:{url.Port}: {(e is SocketException s ? s.SocketErrorCode.ToString() : "timed out")}",
                "Is the API running and listening on that port? A NetworkPolicy must allow agent → api:8000.");
        }

        using var socket = new ClientWebSocket();
        socket.Options.CollectHttpResponseDetails = true;
        socket.Options.SetRequestHeader(AgentProtocol.AgentIdHeader, settings.AgentId);
        socket.Options.SetRequestHeader("Authorization", $"Bearer {settings.AgentKey}");
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await socket.ConnectAsync(url, timeout.Token);
            await Report(output, true, "WebSocket", $"{url.AbsolutePath} upgraded");
            await Report(output, true, "Key", $"the control plane accepts {settings.AgentId}'s key");
            await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "doctor done", CancellationToken.None);
            return 0;
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException)
        {
            var status = socket.HttpStatusCode;
            if (status == HttpStatusCode.Unauthorized)
            {
                await Report(output, true, "WebSocket", $"{url.AbsolutePath} is the agent hub");
                return await Report(output, false, "Key", "401: the key is wrong, belongs to another agent id, or was revoked",
                    "Use the key POST /api/v1/agents returned for this AGENT_ID (with Helm: the agent-key in streamspace-secrets).");
            }

            return await Report(output, false, "WebSocket", ConnectionFailure.Describe(e, status == 0 ? null : status, url),
                "The hub is at /agent/ws on the API's port 8000, e.g. ws://streamspace-api:8000/agent/ws.");
        }
    }

    private static async Task<int> Report(TextWriter output, bool ok, string step, string evidence, string? fix = null)
    {
        await output.WriteLineAsync($"  {(ok ? "ok  " : "FAIL")} {step}: {evidence}");
        if (fix is not null)
        {
            await output.WriteLineAsync($"       fix: {fix}");
        }

        return ok ? 0 : 1;
    }
}
