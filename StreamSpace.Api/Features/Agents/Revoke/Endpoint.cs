using StreamSpace.Contracts;
using FastEndpoints;
using StreamSpace.Api.Infrastructure;
using StreamSpace.Api.Features.Agents.Hub;
using StreamSpace.Api.Features.Audit;
using StreamSpace.Api.Features.Auth;

namespace StreamSpace.Api.Features.Agents.Revoke;

public sealed record RevokeAgentRequest(string Id);

/// <summary>
/// Revokes the credential and drops the agent's live connection at once: here before answering, on the other API
/// instances through the revocation's NOTIFY (<see cref="AgentRevocations"/>).
/// </summary>
public sealed class RevokeAgentEndpoint(AgentStore agents, AgentHub hub) : Endpoint<RevokeAgentRequest>
{
    public override void Configure()
    {
        Delete("agents/{id}");
        Roles(UserRoles.Admin);
        Summary(s => s.Summary = "Revokes an agent's credential and closes its connection (admin only).");
    }

    public override async Task HandleAsync(RevokeAgentRequest request, CancellationToken cancellationToken)
    {
        if (await agents.RevokeAsync(Actor.From(User), request.Id, cancellationToken) == AgentCredentialChange.NotFound)
        {
            await Send.ResultAsync(ApiProblem.NotFound($"No agent has id '{request.Id}'."));
            return;
        }

        await hub.DisconnectAsync(request.Id, AgentCloseCodes.Revoked, "the agent's credential was revoked");
        await Send.NoContentAsync(cancellationToken);
    }
}
