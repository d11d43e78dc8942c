using FastEndpoints;
using StreamSpace.Api.Features.Audit;
using StreamSpace.Api.Features.Sessions;
using StreamSpace.Api.Infrastructure;

namespace StreamSpace.Api.Features.Recordings.Delete;

/// <summary>
/// Deletes a recording: gone from the catalog at once (audited <c>recording.deleted</c>), and its agent deletes the file
/// now, or when it reconnects if it is offline.
/// </summary>
public sealed class DeleteRecordingEndpoint(RecordingCatalog catalog, RecordingDeletes deletes, ISessionAgents agents) : EndpointWithoutRequest
{
    public override void Configure()
    {
        Delete("admin/recordings/{id}");
        Roles(UserRoles.Admin);
        Summary(s => s.Summary = "Deletes a recording and, through its agent, its file (admin only).");
    }

    public override async Task HandleAsync(CancellationToken cancellationToken)
    {
        if (RecordingRoute.Id(Route<string>("id")) is not { } id
            || await catalog.DeleteAsync(id, Actor.From(User), "deleted by an admin", cancellationToken) is not { } deleted)
        {
            await Send.ResultAsync(ApiProblem.NotFound($"No recording {Route<string>("id")}."));
            return;
        }

        await deletes.DeliverAsync(deleted.AgentId, (message, ct) => agents.SendAsync(deleted.AgentId, message, ct), CancellationToken.None);
        await Send.NoContentAsync(cancellationToken);
    }
}
