using FastEndpoints;
using StreamSpace.Api.Features.Audit;

namespace StreamSpace.Api.Features.Groups.Delete;

public sealed class DeleteGroupEndpoint(GroupStore groups) : EndpointWithoutRequest
{
    public override void Configure()
    {
        Delete("admin/groups/{id}");
        Roles(UserRoles.Admin);
        Summary(s => s.Summary = "Removes a group; refused (409) while it is the only group a template is limited to (admin only).");
    }

    public override async Task HandleAsync(CancellationToken cancellationToken)
    {
        var result = await groups.DeleteAsync(Actor.From(User), Route<Guid>("id"), cancellationToken);
        await Send.ResultAsync(result.Refusal() ?? TypedResults.NoContent());
    }
}
