using FastEndpoints;
using StreamSpace.Api.Infrastructure;

namespace StreamSpace.Api.Features.Recordings.Get;

public sealed class GetRecordingEndpoint(RecordingCatalog catalog) : EndpointWithoutRequest<RecordingResponse>
{
    public override void Configure()
    {
        Get("admin/recordings/{id}");
        Roles(UserRoles.Admin);
        Summary(s => s.Summary = "Reads one recording (admin only).");
    }

    public override async Task HandleAsync(CancellationToken cancellationToken)
    {
        if (RecordingRoute.Id(Route<string>("id")) is not { } id || await catalog.GetAsync(id, cancellationToken) is not { } recording)
        {
            await Send.ResultAsync(ApiProblem.NotFound($"No recording {Route<string>("id")}."));
            return;
        }

        await Send.OkAsync(recording, cancellationToken);
    }
}
