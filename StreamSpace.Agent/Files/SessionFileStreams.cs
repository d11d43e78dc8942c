using System.Buffers;
using StreamSpace.Agent.Platforms;
using StreamSpace.Contracts;
using StreamSpace.Contracts.Tunnel;

namespace StreamSpace.Agent.Files;

/// <summary>
/// The agent's end of a file stream (<see cref="FileStreams"/>): an upload into the session's ~/Uploads, a download from
/// its ~/Downloads, or the list of ~/Downloads, carried on a data connection the agent dialed out. Bytes move through
/// one pooled buffer at a time, so TCP's window holds the sender back and nothing of a file is held in memory.
/// </summary>
public sealed class SessionFileStreams(ISessionPlatform platform, ILogger<SessionFileStreams> logger)
{
    private const int CopyBufferBytes = 64 * 1024;

    /// <summary>Runs the operation <paramref name="open"/> asks for on the open <paramref name="data"/> connection.</summary>
    public async Task RunAsync(StreamOpenMessage open, Stream data, CancellationToken cancellationToken)
    {
        try
        {
            if (FileStreams.NameProblem(open.FileName) is { } problem && open.Purpose != FileStreams.ListDownloads)
            {
                throw new FileRefusedException(400, problem);
            }

            var home = await platform.FindHomeAsync(open.SessionId, cancellationToken)
                ?? throw new FileRefusedException(409, "The session is not running on its agent.");
            switch (open.Purpose)
            {
                case FileStreams.Upload:
                    await UploadAsync(home, open.FileName!, data, cancellationToken);
                    break;
                case FileStreams.Download:
                    await DownloadAsync(home, open.FileName!, data, cancellationToken);
                    break;
                default:
                    await ListAsync(home, data, cancellationToken);
                    break;
            }
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
            logger.LogWarning("A file operation {Purpose} in session {SessionId} failed: {Reason}", open.Purpose, open.SessionId, e.Message);
            await FileStreams.WriteReplyAsync(data, new FileStreamReply(502, "The session's agent could not do it: " + e.Message), cancellationToken);
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
