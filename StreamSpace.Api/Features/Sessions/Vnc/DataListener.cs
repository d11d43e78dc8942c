using System.Net;
using System.Net.Sockets;
using System.Text;
using StreamSpace.Api.Features.Replicas;
using StreamSpace.Contracts;
using StreamSpace.Contracts.Tunnel;
using StreamSpace.Settings;

namespace StreamSpace.Api.Features.Sessions.Vnc;

/// <summary>
/// Agents' data connections on a plain socket at <c>DATA_PORT</c>: it reads the HTTP/1.1 Upgrade head itself and
/// answers 101, 204, 401, 426 or 503, as <c>/agent/data</c> on Kestrel does. It exists so the bulk direction (the
/// session's pixels) is received straight into the relay's 64 KiB buffer, not through Kestrel's 4 KiB transport
/// blocks. Bound (and its URL written to <c>api_replicas</c>) before the API serves, so every viewer's open can name it
/// and every other replica can forward to it. A request whose token another replica issued is forwarded there
/// (<see cref="DataForwarder"/>). At most <see cref="MaxUnansweredConnections"/> connections may be sending their head.
/// </summary>
public sealed class DataListener(ApiSettings settings, ReplicaRegistry registry, PendingStreams streams, DataForwarder forwarder, ILogger<DataListener> logger) : BackgroundService
{
    /// <summary>Connections still sending their head (not yet authenticated) at once; one more is closed at accept.</summary>
    public const int MaxUnansweredConnections = 64;

    private static readonly TimeSpan HeadTimeout = TimeSpan.FromSeconds(5);
    private readonly SemaphoreSlim unanswered = new(MaxUnansweredConnections);
    private Socket? listener;

    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        var address = IPAddress.TryParse(settings.ReplicaAddress, out var ip) ? ip : IPAddress.Any;
        var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            socket.Bind(new IPEndPoint(address, settings.DataPort));
            socket.Listen(512);
        }
        catch (SocketException e)
        {
            socket.Dispose();
            throw new InvalidSettingException("DATA_PORT", $"cannot listen on {address}:{settings.DataPort}: {e.Message}; choose a free port, or 0 for any.");
        }

        listener = socket;
        var port = ((IPEndPoint)socket.LocalEndPoint!).Port;
        var url = new UriBuilder(Uri.UriSchemeHttp, settings.ReplicaAddress, port, DataConnection.Path).Uri.ToString();
        await registry.PublishDataUrlAsync(url, cancellationToken);
        logger.LogInformation("Data connections from agents are accepted at {DataUrl}", url);
        await base.StartAsync(cancellationToken);
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        listener?.Dispose();
        await base.StopAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var socket = listener ?? throw new InvalidOperationException("The data listener did not start.");
        while (!stoppingToken.IsCancellationRequested)
        {
            Socket accepted;
            try
            {
                accepted = await socket.AcceptAsync(stoppingToken);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException e)
            {
                logger.LogWarning("The data listener could not accept a connection: {Reason}", e.Message);
                continue;
            }

            if (!unanswered.Wait(0))
            {
                // A flood of idle or slow connections must not hold unbounded sockets and buffers before any is authenticated.
                accepted.Dispose();
                continue;
            }

            _ = ServeAsync(accepted, stoppingToken);
        }
    }

    private async Task ServeAsync(Socket socket, CancellationToken stoppingToken)
    {
        socket.NoDelay = true;
        await using var stream = new NetworkStream(socket, ownsSocket: true);
        try
        {
            (Dictionary<string, string> Headers, byte[] Raw)? head;
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
                timeout.CancelAfter(HeadTimeout);
                head = await ReadHeadAsync(socket, timeout.Token);
            }
            finally
            {
                unanswered.Release();
            }

            if (head is not { Headers: var headers, Raw: var raw })
            {
                await AnswerAsync(stream, "400 Bad Request", stoppingToken);
                return;
            }

            if (forwarder.OtherIssuer(headers.GetValueOrDefault("Authorization")) is { } issuer)
            {
                await using var target = await forwarder.OpenAsync(issuer, raw, stoppingToken);
                if (target is null)
                {
                    await AnswerAsync(stream, "401 Unauthorized", stoppingToken);
                    return;
                }

                // The issuing replica answers the agent itself (101, 204 or 401): this one only carries the bytes.
                await DataForwarder.RelayAsync(stream, target, stoppingToken);
                return;
            }

            var error = headers.GetValueOrDefault(DataConnection.StreamErrorHeader);
            if (error is null && !(headers.TryGetValue("Upgrade", out var upgrade) && string.Equals(upgrade, DataConnection.UpgradeProtocol, StringComparison.OrdinalIgnoreCase)))
            {
                await AnswerAsync(stream, $"426 Upgrade Required\r\nUpgrade: {DataConnection.UpgradeProtocol}", stoppingToken);
                return;
            }

            var (admission, pending) = streams.Admit(headers.GetValueOrDefault("Authorization"), headers.GetValueOrDefault(AgentProtocol.AgentIdHeader),
                headers.GetValueOrDefault(DataConnection.SessionIdHeader), error);
            switch (admission)
            {
                case DataAdmission.Upgrade:
                    var link = await PendingStreams.UpgradeAsync(pending!, async () =>
                    {
                        await stream.WriteAsync(Encoding.ASCII.GetBytes(
                            $"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: {DataConnection.UpgradeProtocol}\r\n\r\n"), stoppingToken);
                        return stream;
                    });
                    if (link is not null)
                    {
                        // The viewer's relay owns the connection now; it is closed once the relay is done.
                        await link.Done;
                    }

                    return;
                case DataAdmission.Reported:
                    await AnswerAsync(stream, "204 No Content", stoppingToken);
                    return;
                case DataAdmission.Draining:
                    await AnswerAsync(stream, "503 Service Unavailable", stoppingToken);
                    return;
                default:
                    await AnswerAsync(stream, "401 Unauthorized", stoppingToken);
                    return;
            }
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException)
        {
            logger.LogDebug("A data connection ended before it was answered: {Reason}", e.Message);
        }
    }

    /// <summary>
    /// Reads the request head up to its blank line and returns its headers; null when it is not a GET of the data path,
    /// is too long, or bytes follow it (the agent speaks only after the 101). The head's bytes come with it, for a forward.
    /// </summary>
    private static async Task<(Dictionary<string, string> Headers, byte[] Raw)?> ReadHeadAsync(Socket socket, CancellationToken cancellationToken)
    {
        var buffer = new byte[DataConnection.MaxHeadBytes];
        var length = 0;
        while (true)
        {
            var read = await socket.ReceiveAsync(buffer.AsMemory(length), SocketFlags.None, cancellationToken);
            if (read == 0)
            {
                return null;
            }

            length += read;
            var end = buffer.AsSpan(0, length).IndexOf("\r\n\r\n"u8);
            if (end >= 0)
            {
                return end + 4 == length && ParseHead(Encoding.ASCII.GetString(buffer, 0, end)) is { } headers ? (headers, buffer[..length]) : null;
            }

            if (length == buffer.Length)
            {
                return null;
            }
        }
    }

    private static Dictionary<string, string>? ParseHead(string head)
    {
        var lines = head.Split("\r\n");
        var requestLine = lines[0].Split(' ');
        if (requestLine is not ["GET", var target, "HTTP/1.1"] || target.Split('?')[0] != DataConnection.Path)
        {
            return null;
        }

        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var line in lines.Skip(1))
        {
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0)
            {
                return null;
            }

            headers[line[..colon].Trim()] = line[(colon + 1)..].Trim();
        }

        return headers;
    }

    private static async Task AnswerAsync(Stream stream, string status, CancellationToken cancellationToken) =>
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"), cancellationToken);
}
