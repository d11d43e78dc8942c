using FastEndpoints;
using StreamSpace.Api.Features.Auth;

namespace StreamSpace.Api.Features.Tokens.List;

public sealed class ListApiTokensEndpoint(ApiTokenStore tokens) : EndpointWithoutRequest<IReadOnlyList<ApiTokenResponse>>
{
    public override void Configure()
    {
        Get("users/me/tokens");
        Options(x => x.WithMetadata(ApiTokenAccess.Refused));
        Summary(s => s.Summary = "Lists the signed-in user's API tokens with their last use (never the secrets).");
    }

    public override async Task HandleAsync(CancellationToken cancellationToken) =>
        await Send.OkAsync(await tokens.ListAsync(User.RequiredUserId(), cancellationToken), cancellationToken);
}
