using FastEndpoints;
using StreamSpace.Api.Features.Audit;

namespace StreamSpace.Api.Features.Groups.Update;

public sealed class UpdateGroupEndpoint(GroupStore groups) : Endpoint<GroupRequest, GroupResponse>
{
    public override void Configure()
    {
        Put("admin/groups/{id}");
        Roles(UserRoles.Admin);
        Summary(s => s.Summary = "Renames a group or changes its description or whether the identity provider manages it; quotas have their own route (admin only).");
    }

    public override async Task HandleAsync(GroupRequest request, CancellationToken cancellationToken) =>
        await Send.ResultAsync(await GroupAnswers.OfAsync(groups.UpdateAsync(Actor.From(User), Route<Guid>("id"), request, cancellationToken)));
}
