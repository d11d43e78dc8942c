using StreamSpace.Api.Features.Sessions.Files;
using StreamSpace.Contracts.Tunnel;

namespace StreamSpace.Api.Features.Recordings.Export;

/// <summary>The recording as an MP4 (H.264) its agent renders with ffmpeg, as an attachment.</summary>
public sealed class ExportRecordingEndpoint(RecordingCatalog catalog, AgentFileStreams streams) : RecordingFileEndpoint(catalog, streams)
{
    protected override string Purpose => RecordingStreams.Export;

    protected override string ContentType => "video/mp4";

    protected override string FileName(RecordingResponse recording) => $"{BaseName(recording)}.mp4";

    public override void Configure()
    {
        Get("admin/recordings/{id}/export");
        Roles(UserRoles.Admin);
        Summary(s => s.Summary = "Exports the recording as an MP4 video, rendered by its agent (admin only).");
    }
}
