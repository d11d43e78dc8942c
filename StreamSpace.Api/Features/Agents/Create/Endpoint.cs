using FastEndpoints;
using StreamSpace.Api.Features.Audit;
using StreamSpace.Api.Features.Auth;
using StreamSpace.Api.Infrastructure;

namespace StreamSpace.Api.Features.Agents.Create;

public sealed class CreateAgentValidator : Validator<CreateAgentRequest>
{
    public CreateAgentValidator()
    {
        RuleFor(x => x.Id).NotEmpty().Matches(AgentIdRules.Pattern)
            .WithMessage("Agent ids use lowercase letters, digits, '.' and '-', up to 63 characters.");
    }
}

public sealed class CreateAgentEndpoint(AgentStore agents) : Endpoint<CreateAgentRequest, CreateAgentResponse>
{
    public override void Configure()
    {
        Post("agents");
        Roles(UserRoles.Admin);
        Summary(s => s.Summary = "Registers an agent and returns its key, once (admin only).");
    }

    public override async Task HandleAsync(CreateAgentRequest request, CancellationToken cancellationToken)
    {
        var (result, key) = await agents.CreateAsync(Actor.From(User), request.Id, cancellationToken);
        if (result == AgentCredentialChange.AlreadyExists)
        {
            await Send.ResultAsync(ApiProblem.Conflict($"Agent '{request.Id}' already has a credential; revoke it first to issue a new key."));
            return;
        }

        await Send.CreatedAtAsync<Get.GetAgentEndpoint>(new { id = request.Id }, new CreateAgentResponse(request.Id, key!), cancellation: cancellationToken);
    }
}
