using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using StreamSpace.Agent;
using StreamSpace.Agent.Tunnel;
using StreamSpace.Contracts;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Agent;

public sealed class DataDialerTests
{
    [Theory]
    // The control plane on this host: a loopback data URL is this host's replica.
    [InlineData("http://127.0.0.1:8001/agent/data", "ws://127.0.0.1:8000/agent/ws", true)]
    [InlineData("http://localhost:8001/agent/data", "ws://localhost:8000/agent/ws", true)]
    // Elsewhere: whoever listens on this host's loopback would get the desktop.
    [InlineData("http://127.0.0.1:8001/agent/data", "ws://api.example.com/agent/ws", false)]
    [InlineData("http://localhost:8001/agent/data", "ws://10.0.0.5:8000/agent/ws", false)]
    [InlineData("http://[::1]:8001/agent/data", "ws://api.example.com/agent/ws", false)]
    [InlineData("http://0.0.0.0:8001/agent/data", "ws://api.example.com/agent/ws", false)]
    [InlineData("http://[::]:8001/agent/data", "ws://api.example.com/agent/ws", false)]
    // A pod address with a plain control plane: the in-cluster fast path.
    [InlineData("http://10.1.2.3:8001/agent/data", "ws://streamspace-api:8000/agent/ws", true)]
    // A control plane over TLS: never plain http beside it.
    [InlineData("http://10.1.2.3:8001/agent/data", "wss://streamspace.example.com/agent/ws", false)]
    [InlineData("http://10.1.2.3:8001/agent/data", "https://streamspace.example.com/agent/ws", false)]
    [InlineData("https://10.1.2.3:8001/agent/data", "wss://streamspace.example.com/agent/ws", true)]
    [InlineData("ftp://10.1.2.3:8001/agent/data", "ws://streamspace-api:8000/agent/ws", false)]
    public void A_direct_data_url_is_dialed_only_when_nobody_else_can_answer_it(string direct, string controlPlane, bool allowed) =>
        Assert.Equal(allowed, DataDialer.MayDialDirect(new Uri(direct), new Uri(controlPlane)));

    [Fact]
    public async Task A_direct_url_that_failed_once_is_tried_again_after_30_seconds()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        using var direct = new FakeReplica(answer: null);
        using var controlPlane = new FakeReplica(answer: "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: streamspace-vnc/2\r\n\r\n");
        var dialer = Dialer(controlPlane.Port, time);

        await using (await dialer.ConnectAsync(Open(direct.Port, time.GetUtcNow()), CancellationToken.None))
        {
            await Eventually.TrueAsync(() => Task.FromResult(direct.Accepted == 1), TimeSpan.FromSeconds(5), "the direct URL to be tried first");
        }

        time.Advance(TimeSpan.FromSeconds(31));
        await using (await dialer.ConnectAsync(Open(direct.Port, time.GetUtcNow()), CancellationToken.None))
        {
            await Eventually.TrueAsync(() => Task.FromResult(direct.Accepted == 2), TimeSpan.FromSeconds(5), "the direct URL to be tried again");
        }
    }

    [Fact]
    public async Task A_data_connection_that_is_never_answered_ends_by_the_tokens_expiry_and_is_closed()
    {
        using var silent = new FakeReplica(answer: "");
        var dialer = Dialer(silent.Port, TimeProvider.System);

        var dial = dialer.ConnectAsync(Open(silent.Port, DateTimeOffset.UtcNow, TimeSpan.FromSeconds(2)), CancellationToken.None);
        Assert.Same(dial, await Task.WhenAny(dial, Task.Delay(TimeSpan.FromSeconds(10))));
        await Assert.ThrowsAsync<TimeoutException>(() => dial);
        // The agent closed its end: the replica reads the end of the stream, no socket is left open.
        await Eventually.TrueAsync(() => Task.FromResult(silent.Closed == 1), TimeSpan.FromSeconds(5), "the unanswered connection to be closed");
    }

    private static DataDialer Dialer(int controlPlanePort, TimeProvider time) =>
        new(new AgentSettings { ControlPlaneUrl = new Uri($"ws://127.0.0.1:{controlPlanePort}/agent/ws"), AgentId = "dialer-agent" }, time,
            NullLogger<DataDialer>.Instance);

    private static StreamOpenMessage Open(int directPort, DateTimeOffset now, TimeSpan? lifetime = null) =>
        new(Guid.NewGuid(), "sess-dialer", "dt1.token", $"http://127.0.0.1:{directPort}/agent/data", now + (lifetime ?? TimeSpan.FromSeconds(10)));

    /// <summary>
    /// A replica's data port that reads each request head and then answers <c>answer</c> (staying silent when it is
    /// empty), or closes at once when it is null. It counts connections accepted and connections the agent closed.
    /// </summary>
    private sealed class FakeReplica : IDisposable
    {
        private readonly TcpListener listener = new(IPAddress.Loopback, 0);
        private readonly CancellationTokenSource stop = new();
        private int accepted;
        private int closed;

        public FakeReplica(string? answer)
        {
            listener.Start();
            _ = AcceptAsync(answer);
        }

        public int Port => ((IPEndPoint)listener.LocalEndpoint).Port;

        public int Accepted => Volatile.Read(ref accepted);

        public int Closed => Volatile.Read(ref closed);

        public void Dispose()
        {
            stop.Cancel();
            listener.Stop();
            stop.Dispose();
        }

        private async Task AcceptAsync(string? answer)
        {
            while (!stop.IsCancellationRequested)
            {
                TcpClient client;
                try
                {
                    client = await listener.AcceptTcpClientAsync(stop.Token);
                }
                catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
                {
                    return;
                }

                Interlocked.Increment(ref accepted);
                _ = ServeAsync(client, answer);
            }
        }

        private async Task ServeAsync(TcpClient client, string? answer)
        {
            using (client)
            {
                if (answer is null)
                {
                    return;
                }

                var stream = client.GetStream();
                var buffer = new byte[8192];
                var head = "";
                try
                {
                    while (!head.Contains("\r\n\r\n", StringComparison.Ordinal))
                    {
                        var read = await stream.ReadAsync(buffer, stop.Token);
                        if (read == 0)
                        {
                            Interlocked.Increment(ref closed);
                            return;
                        }

                        head += System.Text.Encoding.ASCII.GetString(buffer, 0, read);
                    }

                    await stream.WriteAsync(System.Text.Encoding.ASCII.GetBytes(answer), stop.Token);
                    while (await stream.ReadAsync(buffer, stop.Token) > 0)
                    {
                    }

                    Interlocked.Increment(ref closed);
                }
                catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException)
                {
                    if (e is IOException)
                    {
                        Interlocked.Increment(ref closed);
                    }
                }
            }
        }
    }
}
