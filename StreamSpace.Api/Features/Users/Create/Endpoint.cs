using FastEndpoints;
using StreamSpace.Api.Features.Audit;
using StreamSpace.Api.Features.Tokens;
using StreamSpace.Api.Infrastructure;

namespace StreamSpace.Api.Features.Users.Create;

public sealed class CreateUserValidator : Validator<CreateUserRequest>
{
    public CreateUserValidator()
    {
        RuleFor(x => x.Username).ValidUsername();
        RuleFor(x => x.Password).ValidPassword();
        RuleFor(x => x.Role).ValidRole();
    }
}

public sealed class CreateUserEndpoint(UserStore users) : Endpoint<CreateUserRequest, UserResponse>
{
    public override void Configure()
    {
        Post("users");
        Roles(UserRoles.Admin);
        // A user made with a password could sign in and create tokens: a token would outlive its own revocation.
        Options(x => x.WithMetadata(ApiTokenAccess.Refused));
        Summary(s => s.Summary = "Creates a user (admin only; not with a personal API token).");
    }

    public override async Task HandleAsync(CreateUserRequest request, CancellationToken cancellationToken)
    {
        var (result, user) = await users.CreateAsync(Actor.From(User), request.Username, request.Password, request.Role, cancellationToken);
        if (result == UserChange.DuplicateUsername)
        {
            await Send.ResultAsync(ApiProblem.Conflict($"A user named '{request.Username}' already exists."));
            return;
        }

        await Send.CreatedAtAsync<Update.UpdateUserEndpoint>(new { id = user!.Id }, user.ToResponse(), cancellation: cancellationToken);
    }
}
