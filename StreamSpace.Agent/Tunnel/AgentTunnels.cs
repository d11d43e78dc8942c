using StreamSpace.Agent.Platforms;
using System.Threading.Channels;
using StreamSpace.Contracts;

namespace StreamSpace.Agent.Tunnel;

/// <summary>
/// The agent's end of each VNC tunnel: dial the session's VNC server, authenticate with the session password,
/// greet the viewer, then carry bytes both ways until either end closes.
/// </summary>
public sealed class AgentTunnels(ISessionPlatform platform, VncDialGate gate, ILogger<AgentTunnels> logger)
{
    private static readonly TimeSpan DialTimeout = TimeSpan.FromSeconds(5);

    public async Task RunAsync(AgentSocket socket, TunnelOpenMessage open, CancellationToken cancellationToken)
    {
        using var stream = socket.Tunnels.Add(open.StreamId);
        Stream? server = null;
        string reason;
        try
        {
            var endpoint = await platform.FindVncAsync(open.SessionId, cancellationToken)
                ?? throw new InvalidOperationException("the session is not running on this agent");
            using (var dial = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
            {
                dial.CancelAfter(DialTimeout);
                using var slot = await gate.EnterAsync(open.SessionId, dial.Token);
                server = await endpoint.OpenAsync(dial.Token);
                await RfbBridge.AuthenticateToServerAsync(server, endpoint.Password, dial.Token);
            }

            await socket.SendAsync(new TunnelOpenedMessage(open.StreamId), cancellationToken);
            await RfbBridge.GreetViewerAsync(stream, cancellationToken);
            logger.LogInformation("VNC tunnel initialized for session {SessionId} (stream {StreamId}); the viewer takes the mux path", open.SessionId, open.StreamId);

            // Both directions move bytes without an intermediate buffer: the server's bytes are read straight into
            // the tunnel frame, and the viewer's frames are written to the server as they arrived (noting activity
            // for the idle timeout).
            var toServer = stream.CopyToAsync((input, token) =>
            {
                platform.NoteActivity(open.SessionId);
                return server.WriteAsync(input, token);
            }, cancellationToken);
            var toViewer = stream.CopyFromAsync((frame, token) => server.ReadAsync(frame, token), cancellationToken);
            var first = await Task.WhenAny(toServer, toViewer);
            reason = first == toServer ? "the viewer closed" : "the VNC server closed";
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            reason = stream.IsClosed ? stream.CloseReason ?? "closed" : $"could not reach the session's VNC server: {e.Message}";
            logger.LogWarning("VNC tunnel for session {SessionId} (stream {StreamId}) ended: {Reason}", open.SessionId, open.StreamId, reason);
        }
        catch (OperationCanceledException)
        {
            reason = "the agent's connection closed";
        }
        finally
        {
            socket.Tunnels.Remove(open.StreamId, "closed");
            if (server is not null)
            {
                await server.DisposeAsync();
            }
        }

        try
        {
            await socket.SendAsync(new TunnelClosedMessage(open.StreamId, reason), CancellationToken.None);
        }
        catch (ChannelClosedException)
        {
            // The control plane connection is gone, and with it the viewer's end of the stream.
        }
    }
}
