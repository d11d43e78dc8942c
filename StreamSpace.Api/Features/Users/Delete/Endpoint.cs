using FastEndpoints;
using StreamSpace.Api.Features.Audit;
using StreamSpace.Api.Features.Auth;
using StreamSpace.Api.Infrastructure;

namespace StreamSpace.Api.Features.Users.Delete;

public sealed record DeleteUserRequest(Guid Id);

public sealed class DeleteUserEndpoint(UserStore users) : Endpoint<DeleteUserRequest>
{
    public override void Configure()
    {
        Delete("users/{id}");
        Roles(Role.Admin);
        Summary(s => s.Summary = "Deletes a user and their sessions (admin only).");
    }

    public override async Task HandleAsync(DeleteUserRequest request, CancellationToken cancellationToken)
    {
        if (request.Id == User.UserId())
        {
            await Send.ResultAsync(ApiProblem.Conflict("You cannot delete your own account."));
            return;
        }

        switch (await users.DeleteAsync(Actor.From(User), request.Id, cancellationToken))
        {
            case UserChange.NotFound:
                await Send.ResultAsync(ApiProblem.NotFound($"No user has id {request.Id}."));
                break;
            case UserChange.LastAdmin:
                await Send.ResultAsync(ApiProblem.Conflict(UserStore.LastAdminProblem));
                break;
            default:
                await Send.NoContentAsync(cancellationToken);
                break;
        }
    }
}
