using System.Buffers;
using System.Net.Sockets;
using StreamSpace.Api.Features.Replicas;
using StreamSpace.Api.Infrastructure.Metrics;

namespace StreamSpace.Api.Features.Sessions.Vnc;

/// <summary>
/// The forward hop (design §2.2): a data connection that reached this replica with a token another replica issued (an
/// agent outside the cluster, through a balancer) is passed to that replica's data URL, head and all, and its bytes
/// are copied both ways. Only a replica alive in <c>api_replicas</c> is a destination, and only at the data URL it
/// registered, so no request can make this replica dial an address of its choosing.
/// </summary>
public sealed class DataForwarder(ReplicaIdentity replica, IReplicaDirectory directory, ApiMetrics metrics, ILogger<DataForwarder> logger)
{
    private static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(2);
    private const int CopyBufferBytes = 64 * 1024;

    /// <summary>The replica that issued the request's data token, when that is another one; null for this replica's own or no token.</summary>
    public Guid? OtherIssuer(string? authorization) =>
        PendingStreams.IssuerOf(PendingStreams.TokenOf(authorization)) is { } issuer && issuer != replica.Id ? issuer : null;

    /// <summary>
    /// Connects to the issuing replica's data URL and sends it the request head; null when that replica is not alive,
    /// registered no data URL, or cannot be reached (the agent is then refused, as for an unknown token).
    /// </summary>
    public async Task<Stream?> OpenAsync(Guid issuer, ReadOnlyMemory<byte> head, CancellationToken cancellationToken)
    {
        var target = await directory.FindAsync(issuer, cancellationToken);
        if (target is not { Alive: true, DataUrl: { } dataUrl } || !Uri.TryCreate(dataUrl, UriKind.Absolute, out var url) || url.Scheme != Uri.UriSchemeHttp)
        {
            logger.LogDebug("Refused a data connection for replica {ReplicaId}: it is not an alive replica with a data URL", issuer);
            return null;
        }

        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            using var connect = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            connect.CancelAfter(ConnectTimeout);
            await socket.ConnectAsync(url.Host, url.Port, connect.Token);
            var stream = new NetworkStream(socket, ownsSocket: true);
            await stream.WriteAsync(head, connect.Token);
            metrics.DataConnectionForwarded();
            return stream;
        }
        catch (Exception e) when (e is SocketException or IOException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            socket.Dispose();
            logger.LogWarning("Could not forward a data connection to replica {ReplicaId} at {DataUrl}: {Reason}", issuer, dataUrl, e.Message);
            return null;
        }
    }

    /// <summary>Copies bytes both ways until either side ends, then stops the other direction.</summary>
    public static async Task RelayAsync(Stream agent, Stream issuer, CancellationToken cancellationToken)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var toIssuer = PumpAsync(agent, issuer, stop.Token);
        var toAgent = PumpAsync(issuer, agent, stop.Token);
        await Task.WhenAny(toIssuer, toAgent);
        await stop.CancelAsync();
        try
        {
            await Task.WhenAll(toIssuer, toAgent);
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or SocketException or ObjectDisposedException)
        {
            // One side ended; the other was cancelled with it.
        }
    }

    private static async Task PumpAsync(Stream from, Stream to, CancellationToken cancellationToken)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(CopyBufferBytes);
        try
        {
            while (await from.ReadAsync(buffer.AsMemory(0, CopyBufferBytes), cancellationToken) is var read and > 0)
            {
                await to.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
