using FastEndpoints;
using StreamSpace.Api.Infrastructure;
using StreamSpace.Api.Features.Audit;
using StreamSpace.Api.Features.Auth;

namespace StreamSpace.Api.Features.Agents.Drain;

public sealed class DrainAgentRequest
{
    public string Id { get; set; } = "";

    /// <summary>False lets the agent take new sessions again.</summary>
    public bool Draining { get; set; } = true;
}

/// <summary>A draining agent keeps its sessions but gets no new ones.</summary>
public sealed class DrainAgentEndpoint(AgentStore agents) : Endpoint<DrainAgentRequest, AgentView>
{
    public override void Configure()
    {
        Post("agents/{id}/drain");
        Roles(Role.Admin);
        Summary(s => s.Summary = "Stops (or with draining=false resumes) placing new sessions on the agent (admin only).");
    }

    public override async Task HandleAsync(DrainAgentRequest request, CancellationToken cancellationToken)
    {
        if (await agents.SetDrainingAsync(Actor.From(User), request.Id, request.Draining, cancellationToken) == AgentCredentialChange.NotFound)
        {
            await Send.ResultAsync(ApiProblem.NotFound($"No agent has id '{request.Id}'."));
            return;
        }

        await Send.OkAsync((await agents.GetAsync(request.Id, cancellationToken))!, cancellationToken);
    }
}
