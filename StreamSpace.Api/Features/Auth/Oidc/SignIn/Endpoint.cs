using FastEndpoints;
using StreamSpace.Api.Features.Groups;
using StreamSpace.Api.Features.Users;
using StreamSpace.Api.Infrastructure;

namespace StreamSpace.Api.Features.Auth.Oidc.SignIn;

public sealed class OidcSignInValidator : Validator<OidcSignInRequest>
{
    public OidcSignInValidator() => RuleFor(x => x.IdToken).NotEmpty().MaximumLength(64 * 1024);
}

/// <summary>
/// Exchanges an OpenID provider's ID token (from the web UI's code flow) for the API's own token, exactly as a
/// password sign-in does: the same JWT, refresh and revocation rules. The user is created at the first sign-in and
/// linked to the provider's (issuer, subject).
/// </summary>
public sealed class OidcSignInEndpoint(ApiSettings settings, ProviderTokens providerTokens, UsedNonces nonces, IProviderUsers users,
    IUserGroups groups, TokenIssuer tokens, SignIns signIns, TimeProvider time) : Endpoint<OidcSignInRequest, LoginResponse>
{
    public override void Configure()
    {
        Post("auth/oidc");
        AllowAnonymous();
        Summary(s => s.Summary = "Signs in with an ID token of the configured OpenID provider and returns a bearer token.");
    }

    public override async Task HandleAsync(OidcSignInRequest request, CancellationToken cancellationToken)
    {
        if (!settings.OidcEnabled)
        {
            await Send.ResultAsync(ApiProblem.NotFound("Sign-in through an OpenID provider is not configured (OIDC_ISSUER)."));
            return;
        }

        var (identity, nonce, refusal) = await providerTokens.ValidateAsync(request.IdToken, cancellationToken);
        if (identity is null)
        {
            await Send.ResultAsync(ApiProblem.Unauthorized(refusal!));
            return;
        }

        if (!await nonces.TryUseAsync(identity.Issuer, nonce!, cancellationToken))
        {
            await Send.ResultAsync(ApiProblem.Unauthorized("This ID token was already used to sign in; sign in again."));
            return;
        }

        var (result, user) = await users.SignInAsync(identity, cancellationToken);
        switch (result)
        {
            case ProviderSignInResult.UsernameTaken:
                await Send.ResultAsync(ApiProblem.Conflict(
                    $"The username '{identity.Username}' belongs to a StreamSpace account that does not sign in through this provider. An administrator must rename or remove that account first."));
                return;
            case ProviderSignInResult.Disabled:
                await Send.ResultAsync(ApiProblem.Forbidden("This account is disabled in StreamSpace."));
                return;
        }

        // The provider's groups claim decides the user's memberships of provider-managed groups at every sign-in.
        await groups.SetProviderGroupsAsync(user!.Id, identity.Groups, cancellationToken);
        var token = tokens.Issue(user.Id, user.Username, user.Role, user.TokenVersion, signedInAt: time.GetUtcNow());
        await signIns.RecordSignInAsync(user.Id, user.Username, SignInMethods.Oidc, cancellationToken);
        await Send.OkAsync(new LoginResponse(token.Token, token.ExpiresAt, new UserSummary(user.Id, user.Username, user.Role)), cancellationToken);
    }
}
