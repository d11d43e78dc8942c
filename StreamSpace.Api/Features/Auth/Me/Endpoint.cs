using FastEndpoints;
using StreamSpace.Api.Infrastructure;
using StreamSpace.Api.Features.Users;

namespace StreamSpace.Api.Features.Auth.Me;

public sealed class MeEndpoint(IUserAccounts users) : EndpointWithoutRequest<UserResponse>
{
    public override void Configure()
    {
        Get("auth/me");
        Summary(s => s.Summary = "Returns the signed-in user.");
    }

    public override async Task HandleAsync(CancellationToken cancellationToken)
    {
        var user = await users.FindByIdAsync(User.RequiredUserId(), cancellationToken);
        if (user is null)
        {
            await Send.ResultAsync(ApiProblem.Unauthorized("The signed-in user no longer exists."));
            return;
        }

        await Send.OkAsync(user.ToResponse(), cancellationToken);
    }
}
