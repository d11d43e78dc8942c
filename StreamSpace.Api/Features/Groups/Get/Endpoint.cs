using FastEndpoints;
using StreamSpace.Api.Infrastructure;

namespace StreamSpace.Api.Features.Groups.Get;

public sealed class GetGroupEndpoint(GroupStore groups) : EndpointWithoutRequest<GroupResponse>
{
    public override void Configure()
    {
        Get("admin/groups/{id}");
        Roles(UserRoles.Admin);
        Summary(s => s.Summary = "One group with its quotas, members and templates (admin only).");
    }

    public override async Task HandleAsync(CancellationToken cancellationToken)
    {
        var id = Route<Guid>("id");
        if (await groups.GetAsync(id, cancellationToken) is { } group)
        {
            await Send.OkAsync(group, cancellationToken);
            return;
        }

        await Send.ResultAsync(ApiProblem.NotFound($"No group has id {id}."));
    }
}
