using FastEndpoints;
using StreamSpace.Api.Features.Audit;
using StreamSpace.Api.Features.Auth;
using StreamSpace.Api.Infrastructure;

namespace StreamSpace.Api.Features.Tokens.Revoke;

public sealed record RevokeApiTokenRequest(Guid Id);

public sealed class RevokeApiTokenEndpoint(ApiTokenStore tokens) : Endpoint<RevokeApiTokenRequest>
{
    public override void Configure()
    {
        Delete("users/me/tokens/{id}");
        Options(x => x.WithMetadata(ApiTokenAccess.Refused));
        Summary(s => s.Summary = "Revokes one of the signed-in user's API tokens; it stops working at once.");
    }

    public override async Task HandleAsync(RevokeApiTokenRequest request, CancellationToken cancellationToken) =>
        await Send.ResultAsync(ApiTokenRevocations.Answer(
            await tokens.RevokeAsync(Actor.From(User), request.Id, User.RequiredUserId(), cancellationToken), request.Id));
}

public static class ApiTokenRevocations
{
    /// <summary>204 for a revocation, also of a token already revoked (the caller's wish holds); 404 for no such token.</summary>
    public static IResult Answer(TokenRevocation revocation, Guid id) => revocation == TokenRevocation.NotFound
        ? ApiProblem.NotFound($"No API token has id {id}.")
        : TypedResults.NoContent();
}
