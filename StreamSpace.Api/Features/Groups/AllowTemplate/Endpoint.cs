using FastEndpoints;
using StreamSpace.Api.Features.Audit;

namespace StreamSpace.Api.Features.Groups.AllowTemplate;

public sealed class AllowGroupTemplateEndpoint(GroupStore groups) : EndpointWithoutRequest<GroupResponse>
{
    public override void Configure()
    {
        Put("admin/groups/{id}/templates/{template}");
        Roles(UserRoles.Admin);
        Summary(s => s.Summary = "Limits a template to this group and its other groups: only their members and admins see and launch it (admin only).");
    }

    public override async Task HandleAsync(CancellationToken cancellationToken) =>
        await Send.ResultAsync(await GroupAnswers.OfAsync(groups.AllowTemplateAsync(Actor.From(User), Route<Guid>("id"), Route<string>("template")!, cancellationToken)));
}
