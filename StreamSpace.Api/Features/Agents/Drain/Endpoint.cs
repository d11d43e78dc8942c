using FastEndpoints;
using StreamSpace.Api.Features.Audit;
using StreamSpace.Api.Features.Auth;
using StreamSpace.Api.Infrastructure;

namespace StreamSpace.Api.Features.Agents.Drain;

public sealed record DrainAgentRequest(string Id);

/// <summary>Turns draining on or off; the two routes below differ only in which.</summary>
public abstract class SetDrainingEndpoint(AgentStore agents, bool draining) : Endpoint<DrainAgentRequest, AgentResponse>
{
    public override async Task HandleAsync(DrainAgentRequest request, CancellationToken cancellationToken)
    {
        if (await agents.SetDrainingAsync(Actor.From(User), request.Id, draining, cancellationToken) == AgentCredentialChange.NotFound)
        {
            await Send.ResultAsync(ApiProblem.NotFound($"No agent has id '{request.Id}'."));
            return;
        }

        await Send.OkAsync((await agents.GetAsync(request.Id, cancellationToken))!, cancellationToken);
    }
}

/// <summary>A draining agent keeps its sessions but gets no new ones.</summary>
public sealed class DrainAgentEndpoint(AgentStore agents) : SetDrainingEndpoint(agents, draining: true)
{
    public override void Configure()
    {
        Post("agents/{id}/drain");
        Roles(UserRoles.Admin);
        Summary(s => s.Summary = "Stops placing new sessions on the agent (admin only).");
    }
}

/// <summary>Lets a drained agent take new sessions again.</summary>
public sealed class ResumeAgentEndpoint(AgentStore agents) : SetDrainingEndpoint(agents, draining: false)
{
    public override void Configure()
    {
        Delete("agents/{id}/drain");
        Roles(UserRoles.Admin);
        Summary(s => s.Summary = "Resumes placing new sessions on a drained agent (admin only).");
    }
}
