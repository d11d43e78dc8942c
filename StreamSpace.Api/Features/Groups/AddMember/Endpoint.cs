using FastEndpoints;
using StreamSpace.Api.Features.Audit;
using StreamSpace.Api.Features.Users;

namespace StreamSpace.Api.Features.Groups.AddMember;

public sealed class AddGroupMemberEndpoint(GroupStore groups, IUserAccounts users) : Endpoint<AddGroupMemberRequest, GroupResponse>
{
    public override void Configure()
    {
        Post("admin/groups/{id}/members");
        Roles(UserRoles.Admin);
        Summary(s => s.Summary = "Adds a user to a group by hand; the identity provider's claim never removes such a member (admin only).");
    }

    public override async Task HandleAsync(AddGroupMemberRequest request, CancellationToken cancellationToken)
    {
        var user = await users.FindByUsernameAsync(request.Username, cancellationToken);
        if (user is null)
        {
            AddError(x => x.Username, $"No user is named '{request.Username}'.");
            await Send.ErrorsAsync(cancellation: cancellationToken);
            return;
        }

        await Send.ResultAsync(await GroupAnswers.OfAsync(groups.AddMemberAsync(Actor.From(User), Route<Guid>("id"), user.Id, user.Username, cancellationToken)));
    }
}
