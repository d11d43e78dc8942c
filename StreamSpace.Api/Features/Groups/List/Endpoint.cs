using FastEndpoints;

namespace StreamSpace.Api.Features.Groups.List;

public sealed class ListGroupsEndpoint(GroupStore groups) : EndpointWithoutRequest<IReadOnlyList<GroupResponse>>
{
    public override void Configure()
    {
        Get("admin/groups");
        Roles(UserRoles.Admin);
        Summary(s => s.Summary = "Every group with its quotas, members and templates (admin only).");
    }

    public override async Task HandleAsync(CancellationToken cancellationToken) =>
        await Send.OkAsync(await groups.ListAsync(cancellationToken), cancellationToken);
}
