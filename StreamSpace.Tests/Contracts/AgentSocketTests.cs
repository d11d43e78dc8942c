using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using StreamSpace.Contracts;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Contracts;

/// <summary>The one socket type of <c>/agent/ws</c>, as both ends use it, over a real loopback connection.</summary>
public sealed class AgentSocketTests
{
    [Fact]
    public async Task The_control_plane_opens_a_tunnel_the_agent_accepts_and_bytes_flow_both_ways()
    {
        await using var pair = await SocketPair.ConnectAsync();
        var (controlPlane, agent) = (pair.ControlPlane, pair.Agent);
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        _ = controlPlane.RunWriterAsync(stop.Token);
        _ = agent.RunWriterAsync(stop.Token);
        // The control plane's owner sees no message at all: the tunnel's answers are the socket's own business.
        var controlPlaneMessages = controlPlane.ReceiveAsync(stop.Token);

        var opening = controlPlane.OpenTunnelAsync("sess-1", TimeSpan.FromSeconds(10), stop.Token);
        var open = Assert.IsType<TunnelOpenMessage>(await agent.ReceiveAsync(stop.Token));
        Assert.Equal("sess-1", open.SessionId);
        using var agentEnd = agent.Tunnels.Add(open.StreamId);
        await agent.SendAsync(new TunnelOpenedMessage(open.StreamId), stop.Token);
        var (stream, failure) = await opening;
        Assert.Null(failure);
        using var viewerEnd = stream!;
        var agentMessages = agent.ReceiveAsync(stop.Token);

        await viewerEnd.WriteAsync("key press"u8.ToArray(), stop.Token);
        Assert.Equal("key press", await ReadAsync(agentEnd, "key press".Length, stop.Token));
        await agentEnd.WriteAsync("screen update"u8.ToArray(), stop.Token);
        Assert.Equal("screen update", await ReadAsync(viewerEnd, "screen update".Length, stop.Token));

        await agent.CloseTunnelAsync(open.StreamId, "the VNC server closed");
        await Eventually.TrueAsync(() => Task.FromResult(viewerEnd.IsClosed), TimeSpan.FromSeconds(10), "the viewer's end to close");
        Assert.Equal("the VNC server closed", viewerEnd.CloseReason);
        Assert.False(controlPlaneMessages.IsCompleted);
        Assert.False(agentMessages.IsCompleted);
        await stop.CancelAsync();
    }

    [Fact]
    public async Task A_close_reason_too_long_for_a_control_frame_reaches_the_peer_cut_at_a_character_boundary()
    {
        await using var pair = await SocketPair.ConnectAsync();
        var (controlPlane, agent) = (pair.ControlPlane, pair.Agent);
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var reason = "session sess-ü failed: " + string.Concat(Enumerable.Repeat("Größe überschritten, ", 10));

        var closed = agent.ReceiveAsync(stop.Token);
        await controlPlane.CloseAsync(WebSocketCloseStatus.PolicyViolation, reason);

        Assert.Null(await closed);
        Assert.Equal(WebSocketCloseStatus.PolicyViolation, pair.Client.CloseStatus);
        var received = pair.Client.CloseStatusDescription!;
        Assert.True(Encoding.UTF8.GetByteCount(received) <= 123, $"{Encoding.UTF8.GetByteCount(received)} bytes");
        Assert.EndsWith("...", received);
        Assert.StartsWith(received[..^3], reason);
    }

    private static async Task<string> ReadAsync(Stream stream, int length, CancellationToken cancellationToken)
    {
        var buffer = new byte[length];
        await stream.ReadExactlyAsync(buffer, cancellationToken);
        return Encoding.UTF8.GetString(buffer);
    }

    /// <summary>Two WebSockets joined over loopback TCP: the server end as the control plane's, the client end as the agent's.</summary>
    private sealed class SocketPair(TcpClient serverTcp, TcpClient clientTcp) : IAsyncDisposable
    {
        private readonly WebSocket server = WebSocket.CreateFromStream(serverTcp.GetStream(), isServer: true, subProtocol: null, Timeout.InfiniteTimeSpan);

        /// <summary>The agent's WebSocket, to read what the control plane's close carried.</summary>
        public WebSocket Client { get; } = WebSocket.CreateFromStream(clientTcp.GetStream(), isServer: false, subProtocol: null, Timeout.InfiniteTimeSpan);

        public AgentSocket ControlPlane => field ??= new AgentSocket(server, TimeProvider.System);

        public AgentSocket Agent => field ??= new AgentSocket(Client, TimeProvider.System);

        public static async Task<SocketPair> ConnectAsync()
        {
            using var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            var client = new TcpClient();
            var accepted = listener.AcceptTcpClientAsync();
            await client.ConnectAsync(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndpoint).Port);
            return new SocketPair(await accepted, client);
        }

        public ValueTask DisposeAsync()
        {
            server.Dispose();
            Client.Dispose();
            serverTcp.Dispose();
            clientTcp.Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
