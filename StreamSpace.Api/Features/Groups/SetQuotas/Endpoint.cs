using FastEndpoints;
using StreamSpace.Api.Features.Audit;

namespace StreamSpace.Api.Features.Groups.SetQuotas;

public sealed class SetGroupQuotasEndpoint(GroupStore groups) : Endpoint<GroupQuotas, GroupResponse>
{
    public override void Configure()
    {
        Put("admin/groups/{id}/quotas");
        Roles(UserRoles.Admin);
        Summary(s => s.Summary = "Replaces a group's quotas; a null or missing one is not set by this group (admin only). Launches after it use the new values.");
    }

    public override async Task HandleAsync(GroupQuotas request, CancellationToken cancellationToken) =>
        await Send.ResultAsync(await GroupAnswers.OfAsync(groups.SetQuotasAsync(Actor.From(User), Route<Guid>("id"), request, cancellationToken)));
}
