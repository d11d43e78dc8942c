using FastEndpoints;
using StreamSpace.Api.Features.Audit;

namespace StreamSpace.Api.Features.Groups.RemoveMember;

public sealed class RemoveGroupMemberEndpoint(GroupStore groups) : EndpointWithoutRequest<GroupResponse>
{
    public override void Configure()
    {
        Delete("admin/groups/{id}/members/{userId}");
        Roles(UserRoles.Admin);
        Summary(s => s.Summary = "Removes a user from a group (admin only).");
    }

    public override async Task HandleAsync(CancellationToken cancellationToken) =>
        await Send.ResultAsync(await GroupAnswers.OfAsync(groups.RemoveMemberAsync(Actor.From(User), Route<Guid>("id"), Route<Guid>("userId"), cancellationToken)));
}
