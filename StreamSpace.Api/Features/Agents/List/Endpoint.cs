using FastEndpoints;
using StreamSpace.Api.Features.Auth;

namespace StreamSpace.Api.Features.Agents.List;

public sealed class ListAgentsEndpoint(AgentStore agents) : EndpointWithoutRequest<IReadOnlyList<AgentResponse>>
{
    public override void Configure()
    {
        Get("agents");
        Roles(UserRoles.Admin);
        Summary(s => s.Summary = "Lists agents with their status, last heartbeat, capacity and sessions (admin only).");
    }

    public override async Task HandleAsync(CancellationToken cancellationToken) =>
        await Send.OkAsync(await agents.ListAsync(cancellationToken), cancellationToken);
}
