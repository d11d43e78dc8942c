using StreamSpace.Agent.Metrics;
using System.Buffers;
using System.Net.Sockets;
using StreamSpace.Agent.Files;
using StreamSpace.Agent.Platforms;
using StreamSpace.Agent.Recording;
using StreamSpace.Contracts.Tunnel;
using StreamSpace.Contracts;

namespace StreamSpace.Agent.Tunnel;

/// <summary>
/// The agent's end of protocol version 2's data connections, one per viewer: reach the session's VNC server and answer
/// its VNC auth, dial the waiting replica, greet the viewer, then move bytes (splice(2) where both ends are plain
/// sockets, else a user-space copy). A viewer's data connection does not depend on the control socket: it runs until
/// either end closes or the agent stops.
/// </summary>
public sealed class DataConnections(ISessionPlatform platform, DataDialer dialer, VncDialGate gate, AgentSettings settings, AgentMetrics metrics,
    SessionFileStreams files, RecordingStreamService recordings, ILogger<DataConnections> logger)
{
    private static readonly TimeSpan DialTimeout = TimeSpan.FromSeconds(5);
    private const int CopyBufferBytes = 64 * 1024;

    public async Task RunAsync(StreamOpenMessage open, CancellationToken stoppingToken)
    {
        if (open.Purpose is not null)
        {
            await RunFileStreamAsync(open, stoppingToken);
            return;
        }

        Stream? server = null;
        Stream? data = null;
        try
        {
            try
            {
                var endpoint = await platform.FindVncAsync(open.SessionId, stoppingToken)
                    ?? throw new InvalidOperationException("the session is not running on this agent");
                // Chosen before dialling: a view-only viewer of a session without a view-only password is refused, never given the full one.
                var password = endpoint.PasswordFor(open.ViewOnly);
                using var dial = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
                dial.CancelAfter(DialTimeout);
                try
                {
                    using var slot = await gate.EnterAsync(open.SessionId, dial.Token);
                    server = await endpoint.OpenAsync(dial.Token);
                    await RfbBridge.AuthenticateToServerAsync(server, password, dial.Token);
                }
                catch (OperationCanceledException) when (!stoppingToken.IsCancellationRequested)
                {
                    throw new TimeoutException($"no answer within {DialTimeout.TotalSeconds:0}s");
                }
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                logger.LogWarning("Could not reach the VNC server of session {SessionId} (stream {StreamId}): {Reason}", open.SessionId, open.StreamId, e.Message);
                await dialer.ReportFailureAsync(open, e.Message, stoppingToken);
                return;
            }

            data = await dialer.ConnectAsync(open, stoppingToken);
            await RfbBridge.GreetViewerAsync(data, stoppingToken);
            var splice = settings.Splice == SpliceMode.On && server is NetworkStream && data is NetworkStream;
            logger.LogInformation("Viewer of session {SessionId} (stream {StreamId}) takes the {Path} path", open.SessionId, open.StreamId, splice ? "raw+splice" : "raw+copy");
            var activity = new ActivityNote(() => platform.NoteActivity(open.SessionId));
            // Xvnc ignores a view-only viewer's input, so it is no sign of use either: a guest watching does not keep an
            // idle session from its idle timeout.
            Action<int> input = bytes =>
            {
                if (!open.ViewOnly)
                {
                    activity.Moved(bytes);
                }

                metrics.BytesFromViewer(bytes);
            };
            Action<int> output = bytes => metrics.BytesToViewer(bytes);
            metrics.DataConnectionOpened(AgentMetrics.RawPath, splice);
            try
            {
                if (splice)
                {
                    await Splice.RunAsync(((NetworkStream)server).Socket, ((NetworkStream)data).Socket, input, output, stoppingToken);
                }
                else
                {
                    await CopyAsync(server, data, input, output, stoppingToken);
                }
            }
            finally
            {
                metrics.DataConnectionClosed(AgentMetrics.RawPath, splice);
            }
        }
        catch (Exception e)
        {
            // Nobody awaits this task: whatever ended the stream is logged here or nowhere.
            if (!stoppingToken.IsCancellationRequested)
            {
                logger.LogWarning("The data connection of session {SessionId} (stream {StreamId}) ended: {Reason}", open.SessionId, open.StreamId, e.Message);
            }
        }
        finally
        {
            if (data is not null)
            {
                await data.DisposeAsync();
            }

            if (server is not null)
            {
                await server.DisposeAsync();
            }
        }
    }

    /// <summary>A file operation instead of VNC; a purpose this agent does not know is refused with the failure report.</summary>
    private async Task RunFileStreamAsync(StreamOpenMessage open, CancellationToken stoppingToken)
    {
        try
        {
            if (RecordingStreams.Purposes.Contains(open.Purpose!))
            {
                await using var recording = await dialer.ConnectAsync(open, stoppingToken);
                await recordings.ServeAsync(open.Purpose!, open.FileName, recording, stoppingToken);
                return;
            }

            if (!FileStreams.Purposes.Contains(open.Purpose!))
            {
                logger.LogWarning("Refused stream {StreamId} of session {SessionId}: unknown purpose {Purpose}", open.StreamId, open.SessionId, open.Purpose);
                await dialer.ReportFailureAsync(open, $"this agent does not know the stream purpose {open.Purpose}", stoppingToken);
                return;
            }

            await using var data = await dialer.ConnectAsync(open, stoppingToken);
            await files.RunAsync(open, data, stoppingToken);
        }
        catch (Exception e)
        {
            // Nobody awaits this task: whatever ended the stream is logged here or nowhere.
            if (!stoppingToken.IsCancellationRequested)
            {
                logger.LogWarning("The file stream {Purpose} of session {SessionId} (stream {StreamId}) ended: {Reason}", open.Purpose, open.SessionId, open.StreamId, e.Message);
            }
        }
    }

    /// <summary>The user-space fallback: two loops through pooled buffers, until either side ends. Also relays a file stream to a session pod.</summary>
    internal static async Task CopyAsync(Stream server, Stream data, Action<int> input, Action<int> output, CancellationToken cancellationToken)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var toServer = PumpAsync(data, server, input, stop.Token);
        var toViewer = PumpAsync(server, data, output, stop.Token);
        await Task.WhenAny(toServer, toViewer);
        await stop.CancelAsync();
        try
        {
            await Task.WhenAll(toServer, toViewer);
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or SocketException or ObjectDisposedException)
        {
            // One side ended; the other was cancelled with it.
        }
    }

    private static async Task PumpAsync(Stream from, Stream to, Action<int> moved, CancellationToken cancellationToken)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(CopyBufferBytes);
        try
        {
            while (await from.ReadAsync(buffer.AsMemory(0, CopyBufferBytes), cancellationToken) is var read and > 0)
            {
                await to.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
                moved(read);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Notes the viewer's input for the idle timeout at most once a second, however many messages arrive.</summary>
    private sealed class ActivityNote(Action note)
    {
        private long last = long.MinValue;

        public void Moved(int bytes)
        {
            var now = Environment.TickCount64;
            if (now - Interlocked.Read(ref last) >= 1000)
            {
                Interlocked.Exchange(ref last, now);
                note();
            }
        }
    }
}
