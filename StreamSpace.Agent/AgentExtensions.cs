using StreamSpace.Agent.Audio;
using StreamSpace.Agent.Commands;
using StreamSpace.Agent.ControlPlane;
using StreamSpace.Agent.Metrics;
using StreamSpace.Agent.Platforms;
using StreamSpace.Agent.Recording;
using StreamSpace.Settings;

namespace StreamSpace.Agent;

public static class AgentExtensions
{
    /// <summary>The agent's services. Tests build the same host with their own settings.</summary>
    public static IHostApplicationBuilder AddStreamSpaceAgent(this IHostApplicationBuilder builder)
    {
        var settings = SettingsBinder.Bind<AgentSettings>(builder.Configuration);
        builder.Services.AddSingleton(settings);
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddSessionPlatform(settings);
        builder.Services.AddSingleton<OrphanReaper>();
        builder.Services.AddSingleton<CommandExecutor>();
        builder.Services.AddSingleton<StreamSpace.Agent.Tunnel.AgentTunnels>();
        builder.Services.AddSingleton<StreamSpace.Agent.Tunnel.VncDialGate>();
        builder.Services.AddSingleton<StreamSpace.Agent.Tunnel.DataDialer>();
        builder.Services.AddSingleton<StreamSpace.Agent.Tunnel.DataConnections>();
        builder.Services.AddSingleton<StreamSpace.Agent.Files.SessionFileStreams>();
        builder.Services.AddSessionAudio();
        builder.Services.AddSingleton<ControlPlaneClient>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<ControlPlaneClient>());
        // After the control plane client, so it stops first: the recordings' final reports still find the connection.
        builder.Services.AddSessionRecordings();
        builder.Services.AddHostedService<Health.AgentHealthEndpoint>();
        builder.Services.AddAgentMetrics(settings);
        return builder;
    }
}
