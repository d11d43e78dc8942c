using FastEndpoints;
using StreamSpace.Api.Features.Audit;
using StreamSpace.Api.Features.Auth;
using StreamSpace.Api.Infrastructure;

namespace StreamSpace.Api.Features.Users.Update;

public sealed class UpdateUserRequest
{
    public Guid Id { get; set; }
    public string? Role { get; set; }
    public bool? Disabled { get; set; }
    /// <summary>An admin's password reset for this user.</summary>
    public string? Password { get; set; }
}

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
        Roles(Role.Admin);
        Summary(s => s.Summary = "Changes a user's role, disables or enables it, or resets its password (admin only).");
    }

    public override async Task HandleAsync(UpdateUserRequest request, CancellationToken cancellationToken)
    {
        if (request.Password is not null && await ManagedByEnvironmentAsync(request.Id, cancellationToken))
        {
            await Send.ResultAsync(ApiProblem.Conflict($"The password of '{settings.AdminUsername}' is managed by ADMIN_PASSWORD; change the secret instead."));
            return;
        }

        var (result, user) = await users.UpdateAsync(Actor.From(User), request.Id, request.Role, request.Disabled, request.Password, cancellationToken);
        switch (result)
        {
            case UserChange.NotFound:
                await Send.ResultAsync(ApiProblem.NotFound($"No user has id {request.Id}."));
                break;
            case UserChange.LastAdmin:
                await Send.ResultAsync(ApiProblem.Conflict(UserStore.LastAdminProblem));
                break;
            default:
                await Send.OkAsync(user!.ToResponse(), cancellationToken);
                break;
        }
    }

    private async Task<bool> ManagedByEnvironmentAsync(Guid id, CancellationToken cancellationToken) =>
        await users.FindByIdAsync(id, cancellationToken) is { } user && settings.ManagesPasswordOf(user.Username);
}
