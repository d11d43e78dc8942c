using FastEndpoints;

namespace StreamSpace.Api.Features.Tokens.AdminList;

public sealed class ListAllApiTokensEndpoint(ApiTokenStore tokens) : EndpointWithoutRequest<IReadOnlyList<ApiTokenResponse>>
{
    public override void Configure()
    {
        Get("admin/tokens");
        Roles(UserRoles.Admin);
        Options(x => x.WithMetadata(ApiTokenAccess.Refused));
        Summary(s => s.Summary = "Lists every user's API tokens (admin only; never the secrets).");
    }

    public override async Task HandleAsync(CancellationToken cancellationToken) =>
        await Send.OkAsync(await tokens.ListAsync(null, cancellationToken), cancellationToken);
}
