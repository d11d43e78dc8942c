using FastEndpoints;
using StreamSpace.Api.Features.Audit;

namespace StreamSpace.Api.Features.Groups.Create;

public sealed class CreateGroupEndpoint(GroupStore groups) : Endpoint<GroupRequest, GroupResponse>
{
    public override void Configure()
    {
        Post("admin/groups");
        Roles(UserRoles.Admin);
        Summary(s => s.Summary = "Creates a group, with its quotas if given (admin only).");
    }

    public override async Task HandleAsync(GroupRequest request, CancellationToken cancellationToken)
    {
        var result = await groups.CreateAsync(Actor.From(User), request, cancellationToken);
        if (result.Refusal() is { } refusal)
        {
            await Send.ResultAsync(refusal);
            return;
        }

        await Send.CreatedAtAsync<Get.GetGroupEndpoint>(new { id = result.Group!.Id }, result.Group, cancellation: cancellationToken);
    }
}
