using FastEndpoints;
using StreamSpace.Api.Features.Users;
using StreamSpace.Api.Infrastructure;

namespace StreamSpace.Api.Features.Auth.Login;

public sealed class LoginValidator : Validator<LoginRequest>
{
    public LoginValidator()
    {
        RuleFor(x => x.Username).NotEmpty().MaximumLength(UsernameRules.MaximumLength);
        RuleFor(x => x.Password).NotEmpty().MaximumLength(PasswordRules.MaximumLength);
    }
}

/// <summary>
/// Exchanges a username and password for a JWT. An unknown user, a wrong password and a disabled account
/// all get the same 401, in about the same time, so the answer reveals nothing about which accounts exist.
/// </summary>
public sealed class LoginEndpoint(IUserAccounts users, TokenIssuer tokens, LoginThrottle throttle, SignIns signIns, TimeProvider time, ApiSettings settings) : Endpoint<LoginRequest, LoginResponse>
{
    public override void Configure()
    {
        Post("auth/login");
        AllowAnonymous();
        Summary(s => s.Summary = "Signs in with a username and password and returns a bearer token.");
    }

    public override async Task HandleAsync(LoginRequest request, CancellationToken cancellationToken)
    {
        if (await throttle.LoginRefusalAsync(request.Username, HttpContext.Connection.RemoteIpAddress, cancellationToken) is { } refusal)
        {
            await Send.ResultAsync(refusal);
            return;
        }

        // LOCAL_LOGIN=false: passwords are for the bootstrap admin only, so the site can always be recovered. Refused
        // by the name alone, before any password is checked, so the answer says nothing about the account.
        if (!settings.LocalLogin && !string.Equals(request.Username, settings.AdminUsername, StringComparison.OrdinalIgnoreCase))
        {
            await Send.ResultAsync(ApiProblem.Forbidden("Password sign-in is turned off (LOCAL_LOGIN=false); sign in through the identity provider."));
            return;
        }

        var user = await users.FindByUsernameAsync(request.Username, cancellationToken);
        if (!users.VerifyPassword(user, request.Password) || user!.Disabled)
        {
            await Send.ResultAsync(ApiProblem.Unauthorized("Invalid username or password."));
            return;
        }

        await throttle.LoginSucceededAsync(request.Username, HttpContext.Connection.RemoteIpAddress);
        var token = tokens.Issue(user.Id, user.Username, user.Role, user.TokenVersion, signedInAt: time.GetUtcNow());
        await signIns.RecordSignInAsync(user.Id, user.Username, SignInMethods.Password, cancellationToken);
        await Send.OkAsync(new LoginResponse(token.Token, token.ExpiresAt, new UserSummary(user.Id, user.Username, user.Role)), cancellationToken);
    }
}
