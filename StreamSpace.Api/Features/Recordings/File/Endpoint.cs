using StreamSpace.Api.Features.Sessions.Files;
using StreamSpace.Contracts.Tunnel;

namespace StreamSpace.Api.Features.Recordings.File;

/// <summary>The recording file itself (<see cref="RecordingFormat"/>), which the browser's player replays.</summary>
public sealed class RecordingFileDownloadEndpoint(RecordingCatalog catalog, AgentFileStreams streams) : RecordingFileEndpoint(catalog, streams)
{
    protected override string Purpose => RecordingStreams.Download;

    protected override string ContentType => "application/octet-stream";

    protected override string FileName(RecordingResponse recording) => $"{BaseName(recording)}.ssrfb";

    public override void Configure()
    {
        Get("admin/recordings/{id}/file");
        Roles(UserRoles.Admin);
        Summary(s => s.Summary = "Streams the recording file from its agent, for the player (admin only).");
    }
}
