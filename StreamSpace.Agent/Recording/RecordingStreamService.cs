using System.Buffers;
using StreamSpace.Contracts.Tunnel;

namespace StreamSpace.Agent.Recording;

/// <summary>
/// The recording streams of <see cref="RecordingStreams"/> on a data connection: a download sends the recording file
/// as it stands (a running one up to its last record), an export renders it to MP4 first. The file name is the
/// recording's id, never a path.
/// </summary>
public sealed class RecordingStreamService(RecordingFiles files, ILogger<RecordingStreamService> logger)
{
    private const int CopyBufferBytes = 64 * 1024;

    /// <summary>How many exports render at once.</summary>
    public const int ConcurrentExports = 2;

    private readonly SemaphoreSlim exports = new(ConcurrentExports, ConcurrentExports);

    public async Task ServeAsync(string purpose, string? name, Stream data, CancellationToken cancellationToken)
    {
        if (!Guid.TryParseExact(name, "D", out var id))
        {
            await FileStreams.WriteReplyAsync(data, new FileStreamReply(400, "A recording is named by its id, a GUID."), cancellationToken);
            return;
        }

        var path = files.PathOf(id);
        if (!File.Exists(path))
        {
            await FileStreams.WriteReplyAsync(data, new FileStreamReply(404, "This agent has no such recording."), cancellationToken);
            return;
        }

        if (purpose == RecordingStreams.Download)
        {
            await SendFileAsync(path, name + RecordingFiles.Extension, data, cancellationToken);
            return;
        }

        // Rendering takes a core and a frame buffer or two: exports beyond this many wait their turn.
        await exports.WaitAsync(cancellationToken);
        var video = files.TemporaryPath(".mp4");
        try
        {
            try
            {
                await RecordingExport.RenderAsync(path, video, cancellationToken);
            }
            catch (EncoderMissingException e)
            {
                await FileStreams.WriteReplyAsync(data, new FileStreamReply(503, e.Message), cancellationToken);
                return;
            }
            catch (Exception e) when (e is InvalidDataException or IOException && !cancellationToken.IsCancellationRequested)
            {
                logger.LogWarning("Exporting recording {RecordingId} failed: {Reason}", id, e.Message);
                await FileStreams.WriteReplyAsync(data, new FileStreamReply(502, "The recording could not be exported: " + e.Message), cancellationToken);
                return;
            }

            await SendFileAsync(video, $"{name}.mp4", data, cancellationToken);
        }
        finally
        {
            // Every outcome, cancellation included: no temporary MP4 is left beside the recordings.
            File.Delete(video);
            exports.Release();
        }
    }

    /// <summary>The reply with the size as it stands when opened, then exactly that many bytes.</summary>
    private static async Task SendFileAsync(string path, string name, Stream data, CancellationToken cancellationToken)
    {
        await using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 0, FileOptions.Asynchronous);
        var size = file.Length;
        await FileStreams.WriteReplyAsync(data, new FileStreamReply(200, Name: name, Size: size), cancellationToken);
        var buffer = ArrayPool<byte>.Shared.Rent(CopyBufferBytes);
        try
        {
            for (var left = size; left > 0;)
            {
                var read = await file.ReadAsync(buffer.AsMemory(0, (int)Math.Min(CopyBufferBytes, left)), cancellationToken);
                if (read == 0)
                {
                    throw new IOException("the file shrank while it was sent");
                }

                await data.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
                left -= read;
            }

            await data.FlushAsync(cancellationToken);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
