using System.Buffers;
using System.Buffers.Binary;
using FastEndpoints;
using Microsoft.AspNetCore.Http.Features;
using StreamSpace.Contracts.Api;
using StreamSpace.Contracts.Tunnel;

namespace StreamSpace.Api.Features.Sessions.Files.Upload;

/// <summary>
/// PUT the raw file as the body: it is streamed to the session's agent in frames as it arrives, never held whole, and
/// lands in ~/Uploads under its name (or "name (1)" when taken). Past UPLOAD_MAX_BYTES it is refused with 413, by its
/// Content-Length when it has one and by counting otherwise; a refused or cut upload leaves no file.
/// </summary>
public sealed class UploadFileEndpoint(AgentFileStreams files, ApiSettings settings) : EndpointWithoutRequest
{
    private const int ChunkBytes = 64 * 1024;

    public override void Configure()
    {
        Put("sessions/{id}/files/uploads/{name}");
        Summary(s => s.Summary = "Uploads the request body as a file into the session's ~/Uploads; answers its stored name and size.");
    }

    public override async Task HandleAsync(CancellationToken cancellationToken)
    {
        var (id, name) = (Route<string>("id")!, FileRoute.Name(Route<string>("name")));
        if (FileRoute.Refusal(name) is { } refusal)
        {
            await Send.ResultAsync(refusal);
            return;
        }

        if (HttpContext.Request.ContentLength > settings.UploadMaxBytes)
        {
            await Send.ResultAsync(TooLarge());
            return;
        }

        var (stream, problem) = await files.OpenAsync(id, User, FileStreams.Upload, name, cancellationToken);
        if (stream is null)
        {
            await Send.ResultAsync(problem!);
            return;
        }

        await using (stream)
        {
            // The limit is this endpoint's own (counted below), not Kestrel's default of 30 MB.
            if (HttpContext.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
            {
                limit.MaxRequestBodySize = null;
            }

            FileStreamReply stored;
            try
            {
                if (!await CopyAsync(HttpContext.Request.Body, stream.Stream, cancellationToken))
                {
                    // No end frame: the agent sees the connection cut and deletes what it received.
                    await Send.ResultAsync(TooLarge());
                    return;
                }

                stored = await FileStreams.ReadReplyAsync(stream.Stream, cancellationToken);
            }
            catch (Exception e) when (e is IOException or InvalidDataException && !cancellationToken.IsCancellationRequested && !IsFromBody(e))
            {
                // The agent's side broke off (its disk full, the agent stopped): it removes what it received.
                Logger.LogWarning("An upload into session {SessionId} failed on the agent's side: {Reason}", id, e.Message);
                await Send.ResultAsync(AgentFileStreams.Problem(StatusCodes.Status502BadGateway, "The session's agent could not store the file.", null));
                return;
            }

            if (stored is not { Status: StatusCodes.Status200OK, Name: { } storedName, Size: { } size })
            {
                await Send.ResultAsync(AgentFileStreams.Problem(StatusCodes.Status502BadGateway, "The session's agent could not store the file.", stored.Error));
                return;
            }

            await files.AuditAsync(User, "file.uploaded", id, storedName, size, CancellationToken.None);
            await Send.ResultAsync(TypedResults.Created((string?)null, new UploadedFileResponse(storedName, size)));
        }
    }

    /// <summary>A failure reading the browser's body (it went away) is not the agent's: nobody is left to answer.</summary>
    private static bool IsFromBody(Exception e) => e is Microsoft.AspNetCore.Http.BadHttpRequestException || e.InnerException is Microsoft.AspNetCore.Connections.ConnectionResetException;

    private IResult TooLarge() => AgentFileStreams.Problem(StatusCodes.Status413PayloadTooLarge, "The file is too large.",
        $"Uploads may be at most {settings.UploadMaxBytes} bytes (UPLOAD_MAX_BYTES).");

    /// <summary>Sends the body as frames and then the empty frame that ends it; false, without the end, once it passes the limit.</summary>
    private async Task<bool> CopyAsync(Stream body, Stream data, CancellationToken cancellationToken)
    {
        // Each frame's length goes in front of its bytes in the same buffer, so a frame is one write.
        var buffer = ArrayPool<byte>.Shared.Rent(ChunkBytes + 4);
        try
        {
            long total = 0;
            while (await body.ReadAsync(buffer.AsMemory(4, ChunkBytes), cancellationToken) is var read and > 0)
            {
                total += read;
                if (total > settings.UploadMaxBytes)
                {
                    return false;
                }

                BinaryPrimitives.WriteInt32BigEndian(buffer, read);
                await data.WriteAsync(buffer.AsMemory(0, read + 4), cancellationToken);
            }

            await FileStreams.WriteFrameAsync(data, ReadOnlyMemory<byte>.Empty, cancellationToken);
            return true;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
