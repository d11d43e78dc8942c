using StreamSpace.Agent.Platforms.Kubernetes;
using StreamSpace.Agent.Platforms.Local;
using StreamSpace.Settings;

namespace StreamSpace.Agent.Platforms;

public static class PlatformExtensions
{
    public static IServiceCollection AddSessionPlatform(this IServiceCollection services, AgentSettings settings)
    {
        switch (settings.Platform)
        {
            case AgentPlatform.Local:
                services.AddSingleton<SessionAccounts>();
                services.AddSingleton<LocalPlatform>();
                services.AddSingleton<ISessionPlatform>(sp => sp.GetRequiredService<LocalPlatform>());
                break;
            case AgentPlatform.Kubernetes:
                services.AddSingleton<KubernetesPlatform>();
                services.AddSingleton<ISessionPlatform>(sp => sp.GetRequiredService<KubernetesPlatform>());
                break;
            default:
                throw new InvalidSettingException("PLATFORM", $"'{settings.Platform.ToString().ToLowerInvariant()}' is not available in this build; use local or kubernetes.");
        }

        // Before the control plane client's hosted service, which asks the platform for its sessions as it connects.
        services.AddHostedService<SessionPlatformService>();
        return services;
    }
}
