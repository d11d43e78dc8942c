using FastEndpoints;
using StreamSpace.Contracts.Api;
using StreamSpace.Contracts.Tunnel;

namespace StreamSpace.Api.Features.Sessions.Files.ListDownloads;

/// <summary>The regular files of the session's ~/Downloads (an empty list when it has none); symlinks and folders are left out.</summary>
public sealed class ListDownloadsEndpoint(AgentFileStreams files) : EndpointWithoutRequest<SessionFilesResponse>
{
    public override void Configure()
    {
        Get("sessions/{id}/files/downloads");
        Summary(s => s.Summary = "Lists the files of the session's ~/Downloads: name, size and when it was modified.");
    }

    public override async Task HandleAsync(CancellationToken cancellationToken)
    {
        var (stream, problem) = await files.OpenAsync(Route<string>("id")!, User, FileStreams.ListDownloads, null, cancellationToken);
        if (stream is null)
        {
            await Send.ResultAsync(problem!);
            return;
        }

        await using (stream)
        {
            await Send.OkAsync(new SessionFilesResponse(stream.Reply.Files ?? []), cancellationToken);
        }
    }
}
