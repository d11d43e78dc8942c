using StreamSpace.Api.Infrastructure.Database;

namespace StreamSpace.Api.Features.Agents;

/// <summary>
/// Registers the agent whose credential the deployment provides (the AppHost's local agent, the chart's k8s-agent),
/// so it connects without manual steps. The key is bound to PROVISIONED_AGENT_ID alone, and a key an admin revoked
/// stays revoked across restarts: only a new key enables the agent again.
/// </summary>
public sealed class ProvisionedAgent(ApiSettings settings, AgentStore store, ILogger<ProvisionedAgent> logger) : IAfterMigration
{
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(settings.ProvisionedAgentId) || string.IsNullOrEmpty(settings.ProvisionedAgentKey))
        {
            return;
        }

        switch (await store.ProvisionAsync(settings.ProvisionedAgentId, settings.ProvisionedAgentKey, cancellationToken))
        {
            case AgentProvisioning.Provisioned:
                logger.LogInformation("Provisioned the credential of agent {AgentId} from PROVISIONED_AGENT_KEY", settings.ProvisionedAgentId);
                break;
            case AgentProvisioning.KeyRevoked:
                logger.LogWarning("Agent {AgentId} stays revoked: its PROVISIONED_AGENT_KEY was revoked by an admin; give a new PROVISIONED_AGENT_KEY (and the same AGENT_KEY to the agent) to enable it again",
                    settings.ProvisionedAgentId);
                break;
        }
    }
}
