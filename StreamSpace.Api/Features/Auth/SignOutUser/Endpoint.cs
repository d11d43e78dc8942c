using FastEndpoints;
using StreamSpace.Api.Features.Audit;
using StreamSpace.Api.Infrastructure;

namespace StreamSpace.Api.Features.Auth.SignOutUser;

public sealed record SignOutUserRequest(Guid Id);

/// <summary>An admin ends every token of a user (a suspected stolen token), without changing the password.</summary>
public sealed class SignOutUserEndpoint(SignIns signIns) : Endpoint<SignOutUserRequest>
{
    public override void Configure()
    {
        Post("users/{id}/sign-out");
        Roles(UserRoles.Admin);
        Summary(s => s.Summary = "Signs a user out everywhere: every token issued so far stops working (admin only).");
    }

    public override async Task HandleAsync(SignOutUserRequest request, CancellationToken cancellationToken)
    {
        if (!await signIns.SignOutEverywhereAsync(Actor.From(User), request.Id, "user.signed_out", cancellationToken))
        {
            await Send.ResultAsync(ApiProblem.NotFound($"No user has id {request.Id}."));
            return;
        }

        await Send.NoContentAsync(cancellationToken);
    }
}
