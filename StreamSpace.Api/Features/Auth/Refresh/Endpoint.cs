using FastEndpoints;
using StreamSpace.Api.Infrastructure;
using StreamSpace.Api.Features.Auth.Login;
using StreamSpace.Api.Features.Users;

namespace StreamSpace.Api.Features.Auth.Refresh;

/// <summary>
/// Trades a still-valid token for a fresh one, so an active user is not signed out mid-session. The new token keeps
/// the original sign-in time, so refreshing cannot stretch a sign-in past SESSION_MAX_LIFETIME.
/// </summary>
public sealed class RefreshEndpoint(IUserAccounts users, TokenIssuer tokens, ApiSettings settings, TimeProvider time) : EndpointWithoutRequest<LoginResponse>
{
    public override void Configure()
    {
        Post("auth/refresh");
        Summary(s => s.Summary = "Issues a new token for the signed-in user.");
    }

    public override async Task HandleAsync(CancellationToken cancellationToken)
    {
        // A token from before auth_time existed counts as signed in when it was issued.
        var signedInAt = User.AuthTime() ?? User.IssuedAt() ?? time.GetUtcNow();
        if (time.GetUtcNow() - signedInAt >= settings.SessionMaxLifetime)
        {
            await Send.ResultAsync(ApiProblem.Unauthorized("The sign-in is older than SESSION_MAX_LIFETIME; sign in again."));
            return;
        }

        // The bearer handler already refused disabled and deleted users, so the user exists here.
        var user = await users.FindByIdAsync(User.RequiredUserId(), cancellationToken);
        if (user is null)
        {
            await Send.ResultAsync(ApiProblem.Unauthorized("The signed-in user no longer exists."));
            return;
        }

        var token = tokens.Issue(user.Id, user.Username, user.Role, user.TokenVersion, signedInAt);
        await Send.OkAsync(new LoginResponse(token.Token, token.ExpiresAt, new UserSummary(user.Id, user.Username, user.Role)), cancellationToken);
    }
}
