using FastEndpoints;
using StreamSpace.Api.Features.Audit;
using StreamSpace.Api.Features.Auth;

namespace StreamSpace.Api.Features.Tokens.Create;

public sealed class CreateApiTokenValidator : Validator<CreateApiTokenRequest>
{
    public CreateApiTokenValidator()
    {
        RuleFor(x => x.Name).NotEmpty().MaximumLength(100);
        RuleFor(x => x.ExpiresInDays).InclusiveBetween(1, ApiTokenScopes.MaxExpiresInDays)
            .WithMessage($"A token expires in 1 to {ApiTokenScopes.MaxExpiresInDays} days.");
        RuleFor(x => x.Scopes).NotEmpty().WithMessage("Give at least one scope: read, sessions or admin.");
        RuleForEach(x => x.Scopes).Must(scope => ApiTokenScopes.All.Contains(scope))
            .WithMessage("'{PropertyValue}' is not a scope; the scopes are read, sessions and admin.");
    }
}

/// <summary>Creates a personal API token for the signed-in user; the answer is the only time its secret is shown.</summary>
public sealed class CreateApiTokenEndpoint(ApiTokenStore tokens) : Endpoint<CreateApiTokenRequest, CreatedApiTokenResponse>
{
    public override void Configure()
    {
        Post("users/me/tokens");
        Options(x => x.WithMetadata(ApiTokenAccess.Refused));
        Summary(s => s.Summary = "Creates a personal API token (shown once); 'admin' scope for admins only.");
    }

    public override async Task HandleAsync(CreateApiTokenRequest request, CancellationToken cancellationToken)
    {
        if (request.Scopes.Contains(ApiTokenScopes.Admin) && !User.IsAdmin())
        {
            await Send.ResultAsync(TypedResults.Problem(title: "Forbidden.", detail: "Only admins may create tokens with the 'admin' scope.",
                statusCode: StatusCodes.Status403Forbidden));
            return;
        }

        var created = await tokens.CreateAsync(Actor.From(User), User.RequiredUserId(), request, cancellationToken);
        await Send.ResultAsync(TypedResults.Created($"/api/v1/users/me/tokens/{created.Details.Id}", created));
    }
}
