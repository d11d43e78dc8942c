using FastEndpoints;
using Microsoft.Net.Http.Headers;
using StreamSpace.Contracts.Tunnel;

namespace StreamSpace.Api.Features.Sessions.Files.Download;

/// <summary>
/// One file of the session's ~/Downloads as an attachment, streamed from the agent as it reads it. A symlink, a
/// special file or another account's file is refused (403); a file cut short ends the response without its last bytes,
/// so the browser reports a failed download rather than a short file.
/// </summary>
public sealed class DownloadFileEndpoint(AgentFileStreams files) : EndpointWithoutRequest
{
    public override void Configure()
    {
        Get("sessions/{id}/files/downloads/{name}");
        Summary(s => s.Summary = "Downloads a file of the session's ~/Downloads.");
    }

    public override async Task HandleAsync(CancellationToken cancellationToken)
    {
        var (id, name) = (Route<string>("id")!, FileRoute.Name(Route<string>("name")));
        if (FileRoute.Refusal(name) is { } refusal)
        {
            await Send.ResultAsync(refusal);
            return;
        }

        var (stream, problem) = await files.OpenAsync(id, User, FileStreams.Download, name, cancellationToken);
        if (stream is null)
        {
            await Send.ResultAsync(problem!);
            return;
        }

        await using (stream)
        {
            var size = stream.Reply.Size ?? 0;
            var response = HttpContext.Response;
            response.StatusCode = StatusCodes.Status200OK;
            response.ContentType = "application/octet-stream";
            response.ContentLength = size;
            response.Headers.ContentDisposition = new ContentDispositionHeaderValue("attachment") { FileNameStar = name }.ToString();
            var complete = await stream.CopyToAsync(response.Body, cancellationToken);
            if (!complete)
            {
                Logger.LogWarning("A download from session {SessionId} broke off on the agent's side", id);
                // The headers promised the whole file: ending the connection short tells the browser the download failed.
                HttpContext.Abort();
                return;
            }

            await files.AuditAsync(User, "file.downloaded", id, name, size, CancellationToken.None);
        }
    }
}
