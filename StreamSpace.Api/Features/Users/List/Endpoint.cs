using FastEndpoints;

namespace StreamSpace.Api.Features.Users.List;

public sealed class ListUsersEndpoint(UserStore users) : EndpointWithoutRequest<IReadOnlyList<UserResponse>>
{
    public override void Configure()
    {
        Get("users");
        Roles(UserRoles.Admin);
        Summary(s => s.Summary = "Lists every user (admin only).");
    }

    public override async Task HandleAsync(CancellationToken cancellationToken) =>
        await Send.OkAsync([.. (await users.ListAsync(cancellationToken)).Select(u => u.ToResponse())], cancellationToken);
}
