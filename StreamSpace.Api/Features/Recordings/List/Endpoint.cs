using FastEndpoints;

namespace StreamSpace.Api.Features.Recordings.List;

public sealed class ListRecordingsRequest
{
    [QueryParam, BindFrom("session")] public string? Session { get; set; }
    [QueryParam, BindFrom("user")] public string? User { get; set; }
}

/// <summary>The recordings, newest first, optionally of one session or one user.</summary>
public sealed class ListRecordingsEndpoint(RecordingCatalog catalog) : Endpoint<ListRecordingsRequest, IReadOnlyList<RecordingResponse>>
{
    public override void Configure()
    {
        Get("admin/recordings");
        Roles(UserRoles.Admin);
        Summary(s => s.Summary = "Lists the recordings, newest first; ?session= and ?user= filter (admin only).");
    }

    public override async Task HandleAsync(ListRecordingsRequest request, CancellationToken cancellationToken) =>
        await Send.OkAsync(await catalog.ListAsync(request.Session, request.User, cancellationToken), cancellationToken);
}
