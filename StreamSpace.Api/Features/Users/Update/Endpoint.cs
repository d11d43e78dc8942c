using FastEndpoints;
using StreamSpace.Api.Features.Audit;
using StreamSpace.Api.Infrastructure;

namespace StreamSpace.Api.Features.Users.Update;

public sealed class UpdateUserValidator : Validator<UpdateUserRequest>
{
    public UpdateUserValidator()
    {
        RuleFor(x => x.Role).ValidRole().When(x => x.Role is not null);
        RuleFor(x => x.Password).ValidPassword().When(x => x.Password is not null);
    }
}

public sealed class UpdateUserEndpoint(UserStore users, ApiSettings settings) : Endpoint<UpdateUserRequest, UserResponse>
{
    public override void Configure()
    {
        Patch("users/{id}");
        Roles(UserRoles.Admin);
        Summary(s => s.Summary = "Changes a user's role, disables or enables it, or resets its password (admin only).");
    }

    public override async Task HandleAsync(UpdateUserRequest request, CancellationToken cancellationToken)
    {
        var id = Route<Guid>("id");
        if (request.Password is not null && User.IsApiToken())
        {
            // A password set by a token would be a way back in after the token is revoked.
            await Send.ResultAsync(ApiProblem.Forbidden("A personal API token cannot set passwords.", "Reset the password signed in as an admin."));
            return;
        }

        if (request.Password is not null && await ManagedByEnvironmentAsync(id, cancellationToken))
        {
            await Send.ResultAsync(ApiProblem.Conflict($"The password of '{settings.AdminUsername}' is managed by ADMIN_PASSWORD; change the secret instead."));
            return;
        }

        var (result, user) = await users.UpdateAsync(Actor.From(User), id, request.Role, request.Disabled, request.Password, cancellationToken);
        if (result.Refusal(id) is { } refusal)
        {
            await Send.ResultAsync(refusal);
            return;
        }

        await Send.OkAsync(user!.ToResponse(), cancellationToken);
    }

    private async Task<bool> ManagedByEnvironmentAsync(Guid id, CancellationToken cancellationToken) =>
        await users.FindByIdAsync(id, cancellationToken) is { } user && settings.ManagesPasswordOf(user.Username);
}
