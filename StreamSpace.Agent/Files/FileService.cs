using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text.Json;
using StreamSpace.Agent.Audio;
using StreamSpace.Agent.Platforms;
using StreamSpace.Agent.Platforms.Local;
using StreamSpace.Contracts;
using StreamSpace.Contracts.Tunnel;
using StreamSpace.Settings;

namespace StreamSpace.Agent.Files;

/// <summary>
/// The agent's <c>files-serve</c> mode: the file service of a Kubernetes session pod, run there as the session's user
/// (uid 1000, no capabilities) beside Xvnc. It speaks <see cref="FileStreams"/> to the agent, which relays the API's
/// file streams to it, and does the operations with the agent's own confinement (<see cref="HomeFiles"/>,
/// <see cref="ConfinedFolder"/>) on the pod's home. It answers only a connection whose first frame is the session's
/// files key (from the session's Secret, which the agent reads as it reads the VNC password), compared in constant
/// time; any other is closed without a word. It also serves the session's sound (<see cref="AudioStreams"/>): parec on
/// the pod's PulseAudio (STREAMSPACE_SOUND_SOCKET), encoded as the local agent does, so the pod needs no other port.
/// </summary>
public sealed class FileService(FileServiceSettings settings, byte[] key, ILogger<FileService> logger) : BackgroundService
{
    /// <summary>How long a connection has to prove the key and say what it wants: nobody holds a connection open unproven.</summary>
    private static readonly TimeSpan HelloTimeout = TimeSpan.FromSeconds(10);
    private const int MaxRequestBytes = 4096;

    private readonly HomeFiles files = new(logger);
    private readonly SoundCapture sound = new(logger);
    private readonly SessionHome home = new(settings.SessionId, settings.HomePath,
        new SessionAccount(Environment.UserName, UnixFiles.EffectiveUid(), UnixFiles.EffectiveGid()));

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var listener = Listen();
        logger.LogInformation("File service of session {SessionId}: serving ~/{Uploads} and ~/{Downloads} of {Home} as uid {Uid} on {Endpoint}",
            settings.SessionId, FileStreams.UploadsFolder, FileStreams.DownloadsFolder, home.Path, home.Owner.Uid, listener.LocalEndPoint);
        while (!stoppingToken.IsCancellationRequested)
        {
            Socket connection;
            try
            {
                connection = await listener.AcceptAsync(stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            _ = ServeAsync(connection, stoppingToken);
        }
    }

    /// <summary>STREAMSPACE_FILES_ADDRESS, or every address of the pod: IPv6 and IPv4 on one socket, or IPv4 alone where the kernel has no IPv6.</summary>
    private Socket Listen()
    {
        Socket listener;
        IPAddress address;
        if (settings.Address.Length > 0)
        {
            address = IPAddress.Parse(settings.Address);
            listener = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        }
        else if (Socket.OSSupportsIPv6)
        {
            address = IPAddress.IPv6Any;
            listener = new Socket(AddressFamily.InterNetworkV6, SocketType.Stream, ProtocolType.Tcp) { DualMode = true };
        }
        else
        {
            address = IPAddress.Any;
            listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        }

        try
        {
            listener.Bind(new IPEndPoint(address, settings.Port));
            listener.Listen(16);
            return listener;
        }
        catch
        {
            listener.Dispose();
            throw;
        }
    }

    private async Task ServeAsync(Socket connection, CancellationToken stoppingToken)
    {
        var remote = connection.RemoteEndPoint;
        await using var stream = new NetworkStream(connection, ownsSocket: true);
        try
        {
            FileStreamRequest request;
            using (var hello = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken))
            {
                hello.CancelAfter(HelloTimeout);
                // The request frame is read (bounded, not parsed) before a wrong key closes the connection: closing with
                // bytes unread would reset it, and the agent could then not tell a refused key from a cut connection.
                var offered = await ReadKeyAsync(stream, hello.Token);
                var requestFrame = offered is null ? null : await ReadRequestFrameAsync(stream, hello.Token);
                if (offered is null || requestFrame is null || !CryptographicOperations.FixedTimeEquals(offered, key))
                {
                    logger.LogWarning("File service: refused a connection from {Remote}: it did not prove the session's files key", remote);
                    return;
                }

                request = ParseRequest(requestFrame);
            }

            if (request.Purpose == AudioStreams.Purpose)
            {
                await sound.ServeAsync(new SessionSound(settings.SessionId, settings.SoundSocket.Length > 0 ? settings.SoundSocket : null, home.Owner,
                    DropPrivileges: false), stream, stoppingToken);
                return;
            }

            await files.ServeAsync(home, request.Purpose, request.Name, stream, stoppingToken);
        }
        catch (Exception e) when (!stoppingToken.IsCancellationRequested)
        {
            // Nobody awaits this task: whatever ended the connection is logged here or nowhere.
            logger.LogWarning("File service: the connection from {Remote} ended: {Reason}", remote, e.Message);
        }
    }

    /// <summary>The first frame, which must be the key; null when its length is not the key's (its bytes are then not read).</summary>
    private async Task<byte[]?> ReadKeyAsync(Stream stream, CancellationToken cancellationToken)
    {
        var length = new byte[4];
        await stream.ReadExactlyAsync(length, cancellationToken);
        if (System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(length) != key.Length)
        {
            return null;
        }

        var offered = new byte[key.Length];
        await stream.ReadExactlyAsync(offered, cancellationToken);
        return offered;
    }

    private static async Task<byte[]> ReadRequestFrameAsync(Stream stream, CancellationToken cancellationToken)
    {
        var length = await FileStreams.ReadFrameLengthAsync(stream, cancellationToken);
        if (length > MaxRequestBytes)
        {
            throw new InvalidDataException($"the request frame has {length} bytes, more than {MaxRequestBytes}");
        }

        var payload = new byte[length];
        await stream.ReadExactlyAsync(payload, cancellationToken);
        return payload;
    }

    private static FileStreamRequest ParseRequest(byte[] payload)
    {
        try
        {
            return JsonSerializer.Deserialize<FileStreamRequest>(payload, AgentProtocol.Json) is { Purpose: not null } request
                ? request
                : throw new InvalidDataException("the request names no purpose");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException("the request is not JSON: " + e.Message);
        }
    }
}

public static class FileServiceExtensions
{
    /// <summary>The <c>files-serve</c> mode's services: the settings and key, checked at start, and the listener.</summary>
    public static IHostApplicationBuilder AddFileService(this IHostApplicationBuilder builder)
    {
        var settings = SettingsBinder.Bind<FileServiceSettings>(builder.Configuration);
        var key = settings.ReadKey();
        builder.Services.AddSingleton(settings);
        builder.Services.AddHostedService(sp => new FileService(settings, key, sp.GetRequiredService<ILogger<FileService>>()));
        return builder;
    }
}
