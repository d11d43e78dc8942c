using System.Collections.Concurrent;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using StreamSpace.Contracts;
using StreamSpace.Contracts.Tunnel;

namespace StreamSpace.Agent.Tunnel;

/// <summary>
/// The agent's HTTP/1.1 client for data connections. HttpClient has no general Upgrade, so this writes the request
/// head itself and reads the answer byte by byte up to its blank line: no RFB byte is ever read into a buffer here.
/// It dials the replica's direct data URL first (1 s), then the control plane's own URL at <c>/agent/data</c>; a direct
/// URL that failed is skipped for 5 minutes, so later viewers do not pay the second.
/// </summary>
public sealed class DataDialer(AgentSettings settings, TimeProvider time, ILogger<DataDialer> logger)
{
    private static readonly TimeSpan DirectConnectTimeout = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan UnreachableFor = TimeSpan.FromMinutes(5);
    private readonly ConcurrentDictionary<string, DateTimeOffset> unreachable = new();

    /// <summary>The control plane's own data URL: the hub URL with <c>/agent/data</c> for <c>/agent/ws</c>.</summary>
    public Uri FallbackUrl
    {
        get
        {
            var hub = settings.HubUrl;
            var path = hub.AbsolutePath.EndsWith(AgentSettings.HubPath, StringComparison.Ordinal)
                ? hub.AbsolutePath[..^AgentSettings.HubPath.Length] + DataConnection.Path
                : DataConnection.Path;
            return new UriBuilder(hub) { Scheme = hub.Scheme == "wss" ? Uri.UriSchemeHttps : Uri.UriSchemeHttp, Path = path, Query = "" }.Uri;
        }
    }

    /// <summary>Opens the stream's data connection; after the returned 101 the stream carries raw RFB.</summary>
    public async Task<Stream> ConnectAsync(StreamOpenMessage open, CancellationToken cancellationToken)
    {
        var (stream, status) = await RequestAsync(open, error: null, cancellationToken);
        if (status == 101)
        {
            return stream;
        }

        await stream.DisposeAsync();
        throw new IOException($"the control plane answered {status} to the data connection");
    }

    /// <summary>Tells the waiting replica why the stream cannot open; the viewer is closed with 4502 and this reason.</summary>
    public async Task ReportFailureAsync(StreamOpenMessage open, string reason, CancellationToken cancellationToken)
    {
        var (stream, status) = await RequestAsync(open, DataConnection.EncodeError(reason), cancellationToken);
        await stream.DisposeAsync();
        if (status != 204)
        {
            logger.LogWarning("The control plane answered {Status} to the failure report of session {SessionId}'s stream", status, open.SessionId);
        }
    }

    private async Task<(Stream Stream, int Status)> RequestAsync(StreamOpenMessage open, string? error, CancellationToken cancellationToken)
    {
        var direct = new Uri(open.DataUrl);
        var fallback = FallbackUrl;
        if (direct != fallback && !(unreachable.TryGetValue(direct.Authority, out var until) && until > time.GetUtcNow()))
        {
            try
            {
                var stream = await DialAsync(direct, DirectConnectTimeout, cancellationToken);
                return (stream, await SendHeadAsync(stream, direct, open, error, cancellationToken));
            }
            catch (Exception e) when (e is SocketException or IOException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
            {
                unreachable[direct.Authority] = time.GetUtcNow() + UnreachableFor;
                logger.LogWarning("Could not reach the replica's data URL {DataUrl} ({Reason}); using {Fallback} for 5 minutes", direct, e.Message, fallback);
            }
        }

        var viaControlPlane = await DialAsync(fallback, ConnectTimeout, cancellationToken);
        return (viaControlPlane, await SendHeadAsync(viaControlPlane, fallback, open, error, cancellationToken));
    }

    private static async Task<Stream> DialAsync(Uri url, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var connect = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        connect.CancelAfter(timeout);
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(url.Host, url.Port, connect.Token);
            Stream stream = new NetworkStream(socket, ownsSocket: true);
            if (url.Scheme == Uri.UriSchemeHttps)
            {
                var tls = new SslStream(stream, leaveInnerStreamOpen: false);
                await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = url.IdnHost }, connect.Token);
                stream = tls;
            }

            return stream;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private async Task<int> SendHeadAsync(Stream stream, Uri url, StreamOpenMessage open, string? error, CancellationToken cancellationToken)
    {
        var head = new StringBuilder()
            .Append($"GET {url.PathAndQuery} HTTP/1.1\r\n")
            .Append($"Host: {url.Authority}\r\n")
            .Append(error is null ? $"Connection: Upgrade\r\nUpgrade: {DataConnection.UpgradeProtocol}\r\n" : "Connection: close\r\n")
            .Append($"Authorization: Bearer {open.Token}\r\n")
            .Append($"{AgentProtocol.AgentIdHeader}: {settings.AgentId}\r\n")
            .Append($"{DataConnection.SessionIdHeader}: {open.SessionId}\r\n");
        if (error is not null)
        {
            head.Append($"{DataConnection.StreamErrorHeader}: {error}\r\n");
        }

        await stream.WriteAsync(Encoding.ASCII.GetBytes(head.Append("\r\n").ToString()), cancellationToken);
        await stream.FlushAsync(cancellationToken);
        return await ReadStatusAsync(stream, cancellationToken);
    }

    /// <summary>Reads the response head one byte at a time, so the first RFB byte after it stays in the socket.</summary>
    private static async Task<int> ReadStatusAsync(Stream stream, CancellationToken cancellationToken)
    {
        var head = new byte[DataConnection.MaxHeadBytes];
        var length = 0;
        while (length < 4 || !head.AsSpan(length - 4, 4).SequenceEqual("\r\n\r\n"u8))
        {
            if (length == head.Length)
            {
                throw new IOException("the data connection's answer had no end");
            }

            if (await stream.ReadAsync(head.AsMemory(length, 1), cancellationToken) == 0)
            {
                throw new IOException("the control plane closed the data connection before answering");
            }

            length++;
        }

        var statusLine = Encoding.ASCII.GetString(head, 0, head.AsSpan(0, length).IndexOf("\r\n"u8)).Split(' ');
        return statusLine is [var version, var code, ..] && version.StartsWith("HTTP/1.", StringComparison.Ordinal) && int.TryParse(code, out var status)
            ? status
            : throw new IOException("the data connection's answer was not HTTP/1.1");
    }
}
