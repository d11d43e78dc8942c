using System.Text.Json;
using StreamSpace.Agent.Platforms;
using StreamSpace.Agent.Tunnel;
using StreamSpace.Contracts;
using StreamSpace.Contracts.Tunnel;

namespace StreamSpace.Agent.Files;

/// <summary>
/// The agent's end of a file stream (<see cref="FileStreams"/>), carried on a data connection the agent dialed out. On
/// a platform whose sessions' homes the agent opens itself (local), it does the operation (<see cref="HomeFiles"/>); on
/// one whose sessions run elsewhere (a Kubernetes pod), it proves the session's files key to the session's file service
/// and relays the stream, as it relays a viewer's.
/// </summary>
public sealed class SessionFileStreams(ISessionPlatform platform, ILogger<SessionFileStreams> logger)
{
    private static readonly TimeSpan HandshakeTimeout = TimeSpan.FromSeconds(10);
    private readonly HomeFiles files = new(logger);

    /// <summary>Runs the operation <paramref name="open"/> asks for on the open <paramref name="data"/> connection.</summary>
    public Task RunAsync(StreamOpenMessage open, Stream data, CancellationToken cancellationToken) =>
        files.AnswerRefusalsAsync(open.Purpose!, open.SessionId, data, async () =>
        {
            HomeFiles.CheckName(open.Purpose!, open.FileName);
            if (await platform.FindFileServiceAsync(open.SessionId, cancellationToken) is { } service)
            {
                await RelayAsync(service, open, data, cancellationToken);
                return;
            }

            var home = await platform.FindHomeAsync(open.SessionId, cancellationToken)
                ?? throw new FileRefusedException(409, "The session is not running on its agent.");
            await files.ServeAsync(home, open.Purpose!, open.FileName, data, cancellationToken);
        }, cancellationToken);

    /// <summary>
    /// Relays a stream of another purpose (the session's sound) to the session's file service, its refusals answered
    /// as a file stream's are.
    /// </summary>
    public Task RelayToServiceAsync(SessionFileService service, StreamOpenMessage open, Stream data, CancellationToken cancellationToken) =>
        files.AnswerRefusalsAsync(open.Purpose!, open.SessionId, data, () => RelayAsync(service, open, data, cancellationToken), cancellationToken);

    /// <summary>
    /// Opens the session's file service, proves the key and asks for the operation, passes its first reply on (so a
    /// service that cannot be reached or refuses the key is a refusal with a reason, not a cut stream), then moves the
    /// bytes both ways until either side ends.
    /// </summary>
    private async Task RelayAsync(SessionFileService service, StreamOpenMessage open, Stream data, CancellationToken cancellationToken)
    {
        Stream? pod = null;
        try
        {
            byte[] reply;
            try
            {
                // The whole handshake is bounded: the pod runs as the session's user, who could put a silent listener in
                // the service's place, and a relay waiting on it forever would hold the agent's task and socket.
                using var handshake = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                handshake.CancelAfter(HandshakeTimeout);
                pod = await service.Connect(handshake.Token);
                await FileStreams.WriteFrameAsync(pod, service.Key, handshake.Token);
                await FileStreams.WriteFrameAsync(pod, JsonSerializer.SerializeToUtf8Bytes(new FileStreamRequest(open.Purpose!, open.FileName), AgentProtocol.Json), handshake.Token);
                reply = new byte[await FileStreams.ReadFrameLengthAsync(pod, handshake.Token)];
                await pod.ReadExactlyAsync(reply, handshake.Token);
            }
            catch (EndOfStreamException)
            {
                throw new FileRefusedException(502, "The session's file service closed the connection without an answer (it refused the session's files key).");
            }
            catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or OperationCanceledException or InvalidDataException
                && !cancellationToken.IsCancellationRequested)
            {
                logger.LogWarning("Could not reach the file service of session {SessionId} (stream {StreamId}): {Reason}", open.SessionId, open.StreamId, e.Message);
                throw new FileRefusedException(502, $"The session's file service cannot be reached ({e.Message}); its image must run it (see images/session).");
            }

            await FileStreams.WriteFrameAsync(data, reply, cancellationToken);
            await DataConnections.CopyAsync(pod, data, _ => { }, _ => { }, cancellationToken);
        }
        finally
        {
            if (pod is not null)
            {
                await pod.DisposeAsync();
            }
        }
    }
}
