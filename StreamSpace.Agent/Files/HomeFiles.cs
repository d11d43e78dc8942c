using System.Buffers;
using StreamSpace.Agent.Platforms;
using StreamSpace.Contracts;
using StreamSpace.Contracts.Tunnel;

namespace StreamSpace.Agent.Files;

/// <summary>
/// File operations in a session's home, answered on a file stream (<see cref="FileStreams"/>): an upload into
/// ~/Uploads, a download from ~/Downloads, or the list of ~/Downloads. Run by the local agent on its sessions' homes,
/// and by the file service in a Kubernetes session pod on the pod's home. Bytes move through one pooled buffer at a
/// time, so TCP's window holds the sender back and nothing of a file is held in memory.
/// </summary>
public sealed class HomeFiles(ILogger logger)
{
    private const int CopyBufferBytes = 64 * 1024;

    /// <summary>Does <paramref name="purpose"/> in <paramref name="home"/>; a refusal is answered on the stream, with its status and reason.</summary>
    public async Task ServeAsync(SessionHome home, string purpose, string? name, Stream data, CancellationToken cancellationToken) =>
        await AnswerRefusalsAsync(purpose, home.SessionId, data, async () =>
        {
            CheckName(purpose, name);
            switch (purpose)
            {
                case FileStreams.Upload:
                    await UploadAsync(home, name!, data, cancellationToken);
                    break;
                case FileStreams.Download:
                    await DownloadAsync(home, name!, data, cancellationToken);
                    break;
                case FileStreams.ListDownloads:
                    await ListAsync(home, data, cancellationToken);
                    break;
                default:
                    throw new FileRefusedException(400, $"There is no file operation {purpose}.");
            }
        }, cancellationToken);

    /// <summary>Refuses, with 400, a name that is not one file of the folder; a list needs none.</summary>
    public static void CheckName(string purpose, string? name)
    {
        if (purpose != FileStreams.ListDownloads && FileStreams.NameProblem(name) is { } problem)
        {
            throw new FileRefusedException(400, problem);
        }
    }

    /// <summary>Runs <paramref name="operation"/>; a refusal, or a failure to open or write, becomes the reply that says why.</summary>
    public async Task AnswerRefusalsAsync(string purpose, string sessionId, Stream data, Func<Task> operation, CancellationToken cancellationToken)
    {
        try
        {
            await operation();
        }
        catch (FileRefusedException e)
        {
            await FileStreams.WriteReplyAsync(data, new FileStreamReply(e.Status, e.Message), cancellationToken);
        }
        catch (NotSupportedException e)
        {
            await FileStreams.WriteReplyAsync(data, new FileStreamReply(409, e.Message), cancellationToken);
        }
        catch (IOException e) when (!cancellationToken.IsCancellationRequested)
        {
            // The folder or file could not be opened or written (a full disk, say): said to the user, and logged here.
            logger.LogWarning("A file operation {Purpose} in session {SessionId} failed: {Reason}", purpose, sessionId, e.Message);
            await FileStreams.WriteReplyAsync(data, new FileStreamReply(502, "It could not be done in the session's home: " + e.Message), cancellationToken);
        }
    }

    private async Task UploadAsync(SessionHome home, string name, Stream data, CancellationToken cancellationToken)
    {
        using var folder = ConfinedFolder.Open(home.Path, FileStreams.UploadsFolder, home.Owner, create: true)!;
        // A hidden, unique name while it arrives: a cut upload never stands under the real name.
        var temporary = $".streamspace-upload-{Guid.NewGuid():N}.part";
        var published = false;
        var file = folder.CreateNew(temporary);
        try
        {
            long size;
            await using (file)
            {
                await FileStreams.WriteReplyAsync(data, new FileStreamReply(200), cancellationToken);
                size = await ReceiveAsync(data, file, cancellationToken);
                await file.FlushAsync(cancellationToken);
            }

            var stored = folder.Publish(temporary, name);
            published = true;
            logger.LogInformation("Stored an upload of {Bytes} bytes as {Name} in {Folder} of session {SessionId}'s account {Account}", size, stored, folder.Name,
                home.SessionId, home.Owner.Name);
            await FileStreams.WriteReplyAsync(data, new FileStreamReply(200, Name: stored, Size: size), cancellationToken);
        }
        finally
        {
            if (!published)
            {
                folder.Delete(temporary);
            }
        }
    }

    /// <summary>Copies the upload's frames into the file until the empty frame that ends it; the file's length.</summary>
    private static async Task<long> ReceiveAsync(Stream data, Stream file, CancellationToken cancellationToken)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(CopyBufferBytes);
        long total = 0;
        try
        {
            while (await FileStreams.ReadFrameLengthAsync(data, cancellationToken) is var length and > 0)
            {
                while (length > 0)
                {
                    var read = await data.ReadAsync(buffer.AsMemory(0, Math.Min(length, CopyBufferBytes)), cancellationToken);
                    if (read == 0)
                    {
                        throw new EndOfStreamException("the upload was cut off");
                    }

                    await file.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
                    length -= read;
                    total += read;
                }
            }

            return total;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static async Task DownloadAsync(SessionHome home, string name, Stream data, CancellationToken cancellationToken)
    {
        using var folder = ConfinedFolder.Open(home.Path, FileStreams.DownloadsFolder, home.Owner, create: false)
            ?? throw new FileRefusedException(404, $"The session has no ~/{FileStreams.DownloadsFolder} folder.");
        var (file, size) = folder.OpenRead(name);
        await using (file)
        {
            await FileStreams.WriteReplyAsync(data, new FileStreamReply(200, Name: name, Size: size), cancellationToken);
            var buffer = ArrayPool<byte>.Shared.Rent(CopyBufferBytes);
            try
            {
                // Exactly the announced size: a file that shrinks meanwhile ends the connection short, which the API sees as a cut.
                var remaining = size;
                while (remaining > 0 && await file.ReadAsync(buffer.AsMemory(0, (int)Math.Min(remaining, CopyBufferBytes)), cancellationToken) is var read and > 0)
                {
                    await data.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
                    remaining -= read;
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }

            await data.FlushAsync(cancellationToken);
        }
    }

    private static async Task ListAsync(SessionHome home, Stream data, CancellationToken cancellationToken)
    {
        using var folder = ConfinedFolder.Open(home.Path, FileStreams.DownloadsFolder, home.Owner, create: false);
        var files = folder?.List().Select(f => new SessionFile(f.Name, f.Size, f.Modified)).ToList() ?? [];
        await FileStreams.WriteReplyAsync(data, new FileStreamReply(200, Files: files), cancellationToken);
    }
}
