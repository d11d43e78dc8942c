using StreamSpace.Api.Features.Agents.Commands;
using StreamSpace.Api.Features.Agents.Hub;
using StreamSpace.Contracts;

namespace StreamSpace.Api.Features.Agents;

/// <summary><see cref="IAgentHealth"/> from the agents' rows, this instance's hub, its refusals and the command queue.</summary>
public sealed class AgentHealthReader(AgentStore store, AgentHub hub, RefusedAgentLog refusals, AgentCommandQueue commands) : IAgentHealth
{
    public Task<IReadOnlyList<AgentHealth>> ListAsync(CancellationToken cancellationToken) => store.ListHealthAsync(cancellationToken);

    public AgentSocket? Socket(string agentId) => hub.Find(agentId)?.Socket;

    public Task<IReadOnlyList<AgentRefusal>> RecentRefusalsAsync(TimeSpan within, CancellationToken cancellationToken) =>
        refusals.RecentAsync(within, cancellationToken);

    public Task<IReadOnlyList<UnansweredCommand>> UnansweredCommandsAsync(CancellationToken cancellationToken) => commands.UnansweredAsync(cancellationToken);
}
