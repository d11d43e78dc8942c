using FastEndpoints;

namespace StreamSpace.Api.Features.Auth.Logout;

/// <summary>Ends the token this request carries, and only it: the user's other sign-ins (other browsers) go on.</summary>
public sealed class LogoutEndpoint(SignIns signIns) : EndpointWithoutRequest
{
    public override void Configure()
    {
        Post("auth/logout");
        Summary(s => s.Summary = "Signs out: this token stops working on every API instance.");
    }

    public override async Task HandleAsync(CancellationToken cancellationToken)
    {
        await signIns.SignOutAsync(User, cancellationToken);
        await Send.NoContentAsync(cancellationToken);
    }
}
