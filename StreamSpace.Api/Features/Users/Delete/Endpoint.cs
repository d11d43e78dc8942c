using FastEndpoints;
using StreamSpace.Api.Features.Audit;
using StreamSpace.Api.Infrastructure;

namespace StreamSpace.Api.Features.Users.Delete;

public sealed record DeleteUserRequest(Guid Id);

/// <summary>
/// Stops the user's sessions (each audited as the admin's stop, and sent to its agent as stop_session) and removes
/// the user. The sessions stay as history; homes stay on the agents (see README, "Deleting a user").
/// </summary>
public sealed class DeleteUserEndpoint(UserStore users) : Endpoint<DeleteUserRequest>
{
    public override void Configure()
    {
        Delete("users/{id}");
        Roles(UserRoles.Admin);
        Summary(s => s.Summary = "Stops a user's sessions, then deletes the user (admin only).");
    }

    public override async Task HandleAsync(DeleteUserRequest request, CancellationToken cancellationToken)
    {
        if (request.Id == User.UserId())
        {
            await Send.ResultAsync(ApiProblem.Conflict("You cannot delete your own account."));
            return;
        }

        var result = await users.DeleteAsync(Actor.From(User), request.Id, cancellationToken);

        if (result.Refusal(request.Id) is { } refusal)
        {
            await Send.ResultAsync(refusal);
            return;
        }

        await Send.NoContentAsync(cancellationToken);
    }
}
