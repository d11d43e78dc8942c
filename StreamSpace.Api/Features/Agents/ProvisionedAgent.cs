using StreamSpace.Api.Infrastructure.Database;

namespace StreamSpace.Api.Features.Agents;

/// <summary>
/// Registers the agent whose credential the deployment provides (the AppHost's local agent, the chart's k8s-agent),
/// so it connects without manual steps. The key is bound to PROVISIONED_AGENT_ID alone.
/// </summary>
public sealed class ProvisionedAgent(ApiSettings settings, AgentStore store, ILogger<ProvisionedAgent> logger) : IAfterMigration
{
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(settings.ProvisionedAgentId) || string.IsNullOrEmpty(settings.ProvisionedAgentKey))
        {
            return;
        }

        if (await store.ProvisionAsync(settings.ProvisionedAgentId, settings.ProvisionedAgentKey, cancellationToken))
        {
            logger.LogInformation("Provisioned the credential of agent {AgentId} from PROVISIONED_AGENT_KEY", settings.ProvisionedAgentId);
        }
    }
}
