using FastEndpoints;
using StreamSpace.Api.Features.Audit;
using StreamSpace.Api.Infrastructure;

namespace StreamSpace.Api.Features.Auth.LogoutAll;

/// <summary>Ends every token of the signed-in user, this one included: for a lost device or a leaked token.</summary>
public sealed class LogoutAllEndpoint(SignIns signIns) : EndpointWithoutRequest
{
    public override void Configure()
    {
        Post("auth/logout-all");
        Summary(s => s.Summary = "Signs the user out everywhere: every token issued so far stops working.");
    }

    public override async Task HandleAsync(CancellationToken cancellationToken)
    {
        if (!await signIns.SignOutEverywhereAsync(Actor.From(User), User.RequiredUserId(), "auth.signed_out_everywhere", cancellationToken))
        {
            await Send.ResultAsync(ApiProblem.Unauthorized("The signed-in user no longer exists."));
            return;
        }

        await Send.NoContentAsync(cancellationToken);
    }
}
