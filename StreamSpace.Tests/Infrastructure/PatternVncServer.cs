using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using StreamSpace.Agent.Platforms;
using StreamSpace.Agent.Tunnel;
using StreamSpace.Contracts;

namespace StreamSpace.Tests.Infrastructure;

/// <summary>
/// A VNC server on a real loopback socket that asks for the session password as Xvnc does, then, instead of a desktop,
/// streams a byte pattern: the viewer sends an 8-byte seed and a 4-byte length, and gets that many bytes of the seed's
/// pattern. A viewer that checks every byte against its own seed sees any byte that crossed from another viewer.
/// </summary>
public sealed class PatternVncServer : IAsyncDisposable
{
    public const string Password = "pattern1";
    private readonly TcpListener listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource stop = new();
    private readonly Task accepting;
    private int connections;

    public PatternVncServer()
    {
        listener.Start(1024);
        accepting = AcceptAsync();
    }

    public int Port => ((IPEndPoint)listener.LocalEndpoint).Port;

    /// <summary>Viewers connected now.</summary>
    public int Connections => Volatile.Read(ref connections);

    public VncEndpoint Endpoint => new("127.0.0.1", Port, Password);

    /// <summary>Byte <paramref name="offset"/> onwards of <paramref name="seed"/>'s pattern.</summary>
    public static void Fill(ulong seed, long offset, Span<byte> destination)
    {
        for (var i = 0; i < destination.Length; i++)
        {
            var position = offset + i;
            var word = Mix(seed ^ (ulong)(position >> 3));
            destination[i] = (byte)(word >> (int)((position & 7) * 8));
        }
    }

    private static ulong Mix(ulong x)
    {
        x += 0x9E3779B97F4A7C15;
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9;
        x = (x ^ (x >> 27)) * 0x94D049BB133111EB;
        return x ^ (x >> 31);
    }

    private async Task AcceptAsync()
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

            _ = ServeAsync(client);
        }
    }

    private async Task ServeAsync(TcpClient client)
    {
        Interlocked.Increment(ref connections);
        try
        {
            using (client)
            {
                client.NoDelay = true;
                var stream = client.GetStream();
                await stream.WriteAsync("RFB 003.008\n"u8.ToArray(), stop.Token);
                await stream.ReadExactlyAsync(new byte[12], stop.Token);
                await stream.WriteAsync(new byte[] { 1, 2 }, stop.Token); // one type: VNC authentication
                await stream.ReadExactlyAsync(new byte[1], stop.Token);
                var challenge = System.Security.Cryptography.RandomNumberGenerator.GetBytes(16);
                await stream.WriteAsync(challenge, stop.Token);
                var response = new byte[16];
                await stream.ReadExactlyAsync(response, stop.Token);
                var ok = response.AsSpan().SequenceEqual(RfbBridge.EncryptChallenge(challenge, Password));
                await stream.WriteAsync(new byte[] { 0, 0, 0, (byte)(ok ? 0 : 1) }, stop.Token);
                if (!ok)
                {
                    return;
                }

                var request = new byte[12];
                await stream.ReadExactlyAsync(request, stop.Token);
                var seed = BinaryPrimitives.ReadUInt64BigEndian(request);
                var length = BinaryPrimitives.ReadUInt32BigEndian(request.AsSpan(8));
                var chunk = new byte[32 * 1024];
                for (long sent = 0; sent < length;)
                {
                    var count = (int)Math.Min(chunk.Length, length - sent);
                    Fill(seed, sent, chunk.AsSpan(0, count));
                    await stream.WriteAsync(chunk.AsMemory(0, count), stop.Token);
                    sent += count;
                }

                // Then wait for the viewer to leave.
                while (await stream.ReadAsync(new byte[64], stop.Token) > 0)
                {
                }
            }
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or EndOfStreamException)
        {
            // The viewer left mid-stream.
        }
        finally
        {
            Interlocked.Decrement(ref connections);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (stop.IsCancellationRequested)
        {
            return;
        }

        await stop.CancelAsync();
        listener.Stop();
        await accepting;
    }
}

/// <summary>The local platform, except that every session's VNC server is the <see cref="PatternVncServer"/>.</summary>
public sealed class PatternVncPlatform(ISessionPlatform inner, PatternVncServer server) : ISessionPlatform
{
    public string Name => inner.Name;

    public event Action<ReportedSession>? SessionChanged
    {
        add => inner.SessionChanged += value;
        remove => inner.SessionChanged -= value;
    }

    public Task StartMonitoringAsync(CancellationToken cancellationToken) => inner.StartMonitoringAsync(cancellationToken);

    public Task<IReadOnlyList<ReportedSession>> ListSessionsAsync(CancellationToken cancellationToken) => inner.ListSessionsAsync(cancellationToken);

    public Task<ReportedSession> StartAsync(SessionCommandPayload session, CancellationToken cancellationToken) => inner.StartAsync(session, cancellationToken);

    public Task<ReportedSession> StopAsync(string sessionId, CancellationToken cancellationToken) => inner.StopAsync(sessionId, cancellationToken);

    public Task<ReportedSession> HibernateAsync(SessionCommandPayload session, CancellationToken cancellationToken) => inner.HibernateAsync(session, cancellationToken);

    public Task<ReportedSession> WakeAsync(SessionCommandPayload session, CancellationToken cancellationToken) => inner.WakeAsync(session, cancellationToken);

    public async Task<VncEndpoint?> FindVncAsync(string sessionId, CancellationToken cancellationToken) =>
        await inner.FindVncAsync(sessionId, cancellationToken) is null ? null : server.Endpoint;

    public Task<IReadOnlyList<AgentCheck>> CheckAsync(CancellationToken cancellationToken) => inner.CheckAsync(cancellationToken);

    public void NoteActivity(string sessionId) => inner.NoteActivity(sessionId);
}
