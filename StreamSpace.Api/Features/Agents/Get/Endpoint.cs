using FastEndpoints;
using StreamSpace.Api.Infrastructure;
using StreamSpace.Api.Features.Auth;

namespace StreamSpace.Api.Features.Agents.Get;

public sealed record GetAgentRequest(string Id);

public sealed class GetAgentEndpoint(AgentStore agents) : Endpoint<GetAgentRequest, AgentResponse>
{
    public override void Configure()
    {
        Get("agents/{id}");
        Roles(UserRoles.Admin);
        Summary(s => s.Summary = "Shows one agent (admin only).");
    }

    public override async Task HandleAsync(GetAgentRequest request, CancellationToken cancellationToken)
    {
        if (await agents.GetAsync(request.Id, cancellationToken) is { } agent)
        {
            await Send.OkAsync(agent, cancellationToken);
            return;
        }

        await Send.ResultAsync(ApiProblem.NotFound($"No agent has id '{request.Id}'."));
    }
}
