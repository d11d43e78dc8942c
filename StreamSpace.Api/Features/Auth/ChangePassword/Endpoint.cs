using FastEndpoints;
using StreamSpace.Api.Features.Audit;
using StreamSpace.Api.Features.Users;
using StreamSpace.Api.Infrastructure;

namespace StreamSpace.Api.Features.Auth.ChangePassword;

public sealed class ChangePasswordValidator : Validator<ChangePasswordRequest>
{
    public ChangePasswordValidator()
    {
        RuleFor(x => x.CurrentPassword).NotEmpty();
        RuleFor(x => x.NewPassword).ValidPassword();
    }
}

/// <summary>Any signed-in user changes their own password, proving they know the current one.</summary>
public sealed class ChangePasswordEndpoint(IUserAccounts users, ApiSettings settings, LoginThrottle throttle) : Endpoint<ChangePasswordRequest>
{
    public override void Configure()
    {
        Put("users/me/password");
        Summary(s => s.Summary = "Changes the signed-in user's password.");
    }

    public override async Task HandleAsync(ChangePasswordRequest request, CancellationToken cancellationToken)
    {
        var user = await users.FindByIdAsync(User.RequiredUserId(), cancellationToken);
        if (user is null)
        {
            await Send.ResultAsync(ApiProblem.Unauthorized("The signed-in user no longer exists."));
            return;
        }

        if (settings.ManagesPasswordOf(user.Username))
        {
            await Send.ResultAsync(ApiProblem.Conflict("This account's password is managed by ADMIN_PASSWORD; change the secret instead."));
            return;
        }

        if (await throttle.PasswordChangeRefusalAsync(user.Id, user.Username, cancellationToken) is { } refusal)
        {
            await Send.ResultAsync(refusal);
            return;
        }

        if (!users.VerifyPassword(user, request.CurrentPassword))
        {
            AddError(x => x.CurrentPassword, "The current password is wrong.");
            await Send.ErrorsAsync(cancellation: cancellationToken);
            return;
        }

        await throttle.PasswordChangeSucceededAsync(user.Id);
        await users.ChangePasswordAsync(Actor.From(User), user.Id, request.NewPassword, cancellationToken);
        await Send.NoContentAsync(cancellationToken);
    }
}
