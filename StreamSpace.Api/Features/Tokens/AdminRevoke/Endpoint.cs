using FastEndpoints;
using StreamSpace.Api.Features.Audit;
using StreamSpace.Api.Features.Tokens.Revoke;

namespace StreamSpace.Api.Features.Tokens.AdminRevoke;

public sealed class RevokeAnyApiTokenEndpoint(ApiTokenStore tokens) : Endpoint<RevokeApiTokenRequest>
{
    public override void Configure()
    {
        Delete("admin/tokens/{id}");
        Roles(UserRoles.Admin);
        Options(x => x.WithMetadata(ApiTokenAccess.Refused));
        Summary(s => s.Summary = "Revokes any user's API token (admin only).");
    }

    public override async Task HandleAsync(RevokeApiTokenRequest request, CancellationToken cancellationToken) =>
        await Send.ResultAsync(ApiTokenRevocations.Answer(await tokens.RevokeAsync(Actor.From(User), request.Id, null, cancellationToken), request.Id));
}
