using StreamSpace.Api.Features.Tokens;
using FastEndpoints;
using StreamSpace.Api.Features.Audit;
using StreamSpace.Api.Features.Auth;
using StreamSpace.Api.Features.Users;
using StreamSpace.Api.Infrastructure;

namespace StreamSpace.Api.Features.Sessions.Create;

public sealed class CreateSessionValidator : Validator<CreateSessionRequest>
{
    public CreateSessionValidator() => RuleFor(x => x.Template).NotEmpty();
}

/// <summary>Launches a session: 202 with the pending session; the agent's progress arrives as state changes.</summary>
public sealed class CreateSessionEndpoint(SessionStore sessions, IUserAccounts users) : Endpoint<CreateSessionRequest, SessionResponse>
{
    public override void Configure()
    {
        Post("sessions");
        Options(x => x.WithMetadata(ApiTokenAccess.SessionControl));
        Summary(s => s.Summary = "Launches a session of a template; answers 202 with the pending session.");
    }

    public override async Task HandleAsync(CreateSessionRequest request, CancellationToken cancellationToken)
    {
        var ownerId = User.RequiredUserId();
        if (request.User is { Length: > 0 } username && !string.Equals(username, User.Identity?.Name, StringComparison.OrdinalIgnoreCase))
        {
            if (!User.IsAdmin())
            {
                await Send.ResultAsync(TypedResults.Problem(title: "Forbidden.", detail: "Only admins may launch sessions for other users.", statusCode: StatusCodes.Status403Forbidden));
                return;
            }

            var owner = await users.FindByUsernameAsync(username, cancellationToken);
            if (owner is null)
            {
                AddError(x => x.User!, $"No user is named '{username}'.");
                await Send.ErrorsAsync(cancellation: cancellationToken);
                return;
            }

            ownerId = owner.Id;
        }

        var result = await sessions.CreateAsync(Actor.From(User), ownerId, request.Template, cancellationToken);
        switch (result.Change)
        {
            case SessionChange.UnknownTemplate or SessionChange.UnknownUser:
                AddError(x => x.Template, result.Detail!);
                await Send.ErrorsAsync(cancellation: cancellationToken);
                return;
            case SessionChange.NotAllowed:
                await Send.ResultAsync(ApiProblem.Forbidden("Not in the template's groups.", result.Detail));
                return;
            case SessionChange.QuotaReached:
                await Send.ResultAsync(ApiProblem.Conflict(result.Detail!));
                return;
            case SessionChange.NoAgent:
                await Send.ResultAsync(ApiProblem.Unavailable("No available agents.", result.Detail!));
                return;
        }

        await Send.ResultAsync(TypedResults.Accepted($"/api/v1/sessions/{result.Session!.Id}", result.Session));
    }
}
