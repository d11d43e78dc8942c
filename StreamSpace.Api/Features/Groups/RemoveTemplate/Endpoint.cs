using FastEndpoints;
using StreamSpace.Api.Features.Audit;

namespace StreamSpace.Api.Features.Groups.RemoveTemplate;

public sealed class RemoveGroupTemplateEndpoint(GroupStore groups) : EndpointWithoutRequest<GroupResponse>
{
    public override void Configure()
    {
        Delete("admin/groups/{id}/templates/{template}");
        Roles(UserRoles.Admin);
        Summary(s => s.Summary = "Takes a template from this group; a template left in no group is open to everyone (admin only).");
    }

    public override async Task HandleAsync(CancellationToken cancellationToken) =>
        await Send.ResultAsync(await GroupAnswers.OfAsync(groups.RemoveTemplateAsync(Actor.From(User), Route<Guid>("id"), Route<string>("template")!, cancellationToken)));
}
