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
/// It dials the replica's direct data URL first (1 s) when <see cref="MayDialDirect"/> allows, then the control plane's
/// own URL at <c>/agent/data</c>; a direct URL that failed is skipped for <see cref="UnreachableFor"/>, so the viewers
/// right after do not pay the second, yet a replica that comes back is used again soon. The whole dial ends by the
/// token's expiry: after it the replica refuses the token anyway.
/// </summary>
public sealed class DataDialer(AgentSettings settings, TimeProvider time, ILogger<DataDialer> logger)
{
    private static readonly TimeSpan DirectConnectTimeout = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(5);
    public static readonly TimeSpan UnreachableFor = TimeSpan.FromSeconds(30);

    /// <summary>At least this long for a dial, whatever the open's expiry says: the two clocks may disagree by a little.</summary>
    private static readonly TimeSpan MinimumDial = TimeSpan.FromSeconds(1);
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

    /// <summary>
    /// Whether the agent may dial a replica's direct data URL. Whoever answers there gets the desktop, so not a loopback
    /// or unspecified address unless the control plane itself is on this host (a replica that registered 127.0.0.1 is
    /// not here otherwise, and a local user could be listening), and not plain http when the control plane is reached
    /// over TLS. Otherwise the control plane's own URL is used.
    /// </summary>
    public static bool MayDialDirect(Uri direct, Uri controlPlane)
    {
        if (direct.Scheme is not ("http" or "https"))
        {
            return false;
        }

        if (controlPlane.Scheme is "wss" or "https" && direct.Scheme != Uri.UriSchemeHttps)
        {
            return false;
        }

        return !IsLocal(direct) || IsLocal(controlPlane);
    }

    private static bool IsLocal(Uri url) =>
        url.IsLoopback || System.Net.IPAddress.TryParse(url.DnsSafeHost, out var address) &&
            (System.Net.IPAddress.IsLoopback(address) || address.Equals(System.Net.IPAddress.Any) || address.Equals(System.Net.IPAddress.IPv6Any));

    private async Task<(Stream Stream, int Status)> RequestAsync(StreamOpenMessage open, string? error, CancellationToken cancellationToken)
    {
        var remaining = open.ExpiresAt - time.GetUtcNow();
        using var deadline = new CancellationTokenSource(
            remaining < MinimumDial ? MinimumDial : remaining > DataConnection.TokenLifetime ? DataConnection.TokenLifetime : remaining, time);
        using var dial = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
        try
        {
            return await RequestWithinAsync(open, error, dial.Token);
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException("the data connection was not answered before its token expired");
        }
    }

    private async Task<(Stream Stream, int Status)> RequestWithinAsync(StreamOpenMessage open, string? error, CancellationToken cancellationToken)
    {
        var direct = Uri.TryCreate(open.DataUrl, UriKind.Absolute, out var url) ? url : null;
        var fallback = FallbackUrl;
        if (settings.DirectData == DirectData.Auto && direct is not null && direct != fallback && MayDialDirect(direct, settings.HubUrl) &&
            !(unreachable.TryGetValue(direct.Authority, out var until) && until > time.GetUtcNow()))
        {
            try
            {
                return await OpenAsync(direct, DirectConnectTimeout, open, error, cancellationToken);
            }
            catch (Exception e) when (e is SocketException or IOException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
            {
                unreachable[direct.Authority] = time.GetUtcNow() + UnreachableFor;
                logger.LogWarning("Could not reach the replica's data URL {DataUrl} ({Reason}); using {Fallback} for {Seconds}s", direct, e.Message, fallback,
                    UnreachableFor.TotalSeconds);
            }
        }

        return await OpenAsync(fallback, ConnectTimeout, open, error, cancellationToken);
    }

    /// <summary>Dials, sends the head and reads the status; the stream is closed when any of it fails.</summary>
    private async Task<(Stream Stream, int Status)> OpenAsync(Uri url, TimeSpan connectTimeout, StreamOpenMessage open, string? error, CancellationToken cancellationToken)
    {
        var stream = await DialAsync(url, connectTimeout, cancellationToken);
        try
        {
            return (stream, await SendHeadAsync(stream, url, open, error, cancellationToken));
        }
        catch
        {
            await stream.DisposeAsync();
            throw;
        }
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
        return await DataConnection.ReadStatusAsync(stream, cancellationToken);
    }
}
