using StreamSpace.Contracts.Tunnel;

namespace StreamSpace.Tests.Contracts.Tunnel;

/// <summary>
/// The tunnel's flow control, with the two ends of an agent socket wired to each other: every frame one side sends is
/// dispatched to the other side, as the control plane and the agent do.
/// </summary>
public sealed class TunnelStreamTests
{
    [Fact]
    public async Task A_viewer_that_stops_reading_holds_the_server_back_at_one_window_and_then_gets_every_byte_in_order()
    {
        var (agent, controlPlane) = Connected();
        var server = new CountingSource();
        var viewerEnd = controlPlane.Open();
        var serverEnd = agent.Add(viewerEnd.Id);

        var relay = serverEnd.CopyFromAsync((frame, _) => server.ReadAsync(frame), CancellationToken.None);

        // Nobody reads the viewer's end: the agent stops reading the VNC server once a window is in flight.
        Assert.False(relay.IsCompleted);
        Assert.Equal(TunnelFrame.Window, server.Produced);

        // The viewer catches up and receives the server's bytes exactly, while the server goes on.
        server.StopAfter(3 * TunnelFrame.Window + 123);
        var received = new CountingSink();
        var viewing = viewerEnd.CopyToAsync((chunk, _) => received.WriteAsync(chunk), CancellationToken.None);
        await relay;
        Assert.Equal(3 * TunnelFrame.Window + 123, server.Produced);
        serverEnd.Close("the VNC server closed");
        controlPlane.Remove(viewerEnd.Id, "the VNC server closed");
        await viewing;
        Assert.Equal(server.Produced, received.Count);
        Assert.True(received.InOrder);
    }

    [Fact]
    public async Task A_stalled_stream_does_not_slow_another_stream_on_the_same_socket()
    {
        var (agent, controlPlane) = Connected();
        var stalledViewer = controlPlane.Open();
        var busyViewer = controlPlane.Open();
        var stalledServer = new CountingSource();
        var busyServer = new CountingSource();
        busyServer.StopAfter(16 * TunnelFrame.Window);
        var stalledRelay = agent.Add(stalledViewer.Id).CopyFromAsync((frame, _) => stalledServer.ReadAsync(frame), CancellationToken.None);
        var busyRelay = agent.Add(busyViewer.Id).CopyFromAsync((frame, _) => busyServer.ReadAsync(frame), CancellationToken.None);

        var received = new CountingSink();
        var viewing = busyViewer.CopyToAsync((chunk, _) => received.WriteAsync(chunk), CancellationToken.None);
        await busyRelay;
        controlPlane.Remove(busyViewer.Id, "done");
        await viewing;

        Assert.Equal(16 * TunnelFrame.Window, received.Count);
        Assert.True(received.InOrder);
        Assert.False(stalledRelay.IsCompleted);
        Assert.Equal(TunnelFrame.Window, stalledServer.Produced);
    }

    [Fact]
    public async Task Bytes_a_handshake_left_unread_reach_the_destination_before_the_rest()
    {
        var (agent, controlPlane) = Connected();
        var viewerEnd = controlPlane.Open();
        var serverEnd = agent.Add(viewerEnd.Id);
        await serverEnd.WriteAsync("RFB 003.008\n"u8.ToArray().Concat(new byte[] { 1, 2, 3 }).ToArray());
        await serverEnd.WriteAsync(new byte[] { 4, 5 });

        var version = new byte[12];
        await viewerEnd.ReadExactlyAsync(version);
        Assert.Equal("RFB 003.008\n"u8.ToArray(), version);

        var rest = new MemoryStream();
        serverEnd.Close("done");
        controlPlane.Remove(viewerEnd.Id, "done");
        await viewerEnd.CopyToAsync(rest);
        Assert.Equal(new byte[] { 1, 2, 3, 4, 5 }, rest.ToArray());
    }

    private static (TunnelMux Agent, TunnelMux ControlPlane) Connected()
    {
        TunnelMux? agent = null;
        TunnelMux? controlPlane = null;
        agent = new TunnelMux((frame, _) => Deliver(controlPlane!, frame));
        controlPlane = new TunnelMux((frame, _) => Deliver(agent, frame));
        return (agent, controlPlane);

        static ValueTask Deliver(TunnelMux to, ReadOnlyMemory<byte> frame)
        {
            Assert.True(to.Dispatch(frame.Span));
            return ValueTask.CompletedTask;
        }
    }

    /// <summary>A VNC server that always has bytes ready (a counting pattern), until told to stop.</summary>
    private sealed class CountingSource
    {
        private long limit = long.MaxValue;

        public long Produced { get; private set; }

        public void StopAfter(long total) => limit = total;

        public ValueTask<int> ReadAsync(Memory<byte> destination)
        {
            var count = (int)Math.Min(destination.Length, limit - Produced);
            var span = destination.Span;
            for (var i = 0; i < count; i++)
            {
                span[i] = (byte)(Produced + i);
            }

            Produced += count;
            return ValueTask.FromResult(count);
        }
    }

    /// <summary>A viewer that checks the counting pattern arrives unbroken.</summary>
    private sealed class CountingSink
    {
        public long Count { get; private set; }

        public bool InOrder { get; private set; } = true;

        public ValueTask WriteAsync(ReadOnlyMemory<byte> chunk)
        {
            var span = chunk.Span;
            for (var i = 0; i < span.Length; i++)
            {
                InOrder &= span[i] == (byte)(Count + i);
            }

            Count += span.Length;
            return ValueTask.CompletedTask;
        }
    }
}
