using StreamSpace.Api.Features.Agents.Commands;
using StreamSpace.Api.Features.Agents.Hub;
using StreamSpace.Api.Features.Replicas;
using StreamSpace.Api.Features.Sessions;
using StreamSpace.Api.Infrastructure.Database;
using StreamSpace.Api.Infrastructure.Metrics;

namespace StreamSpace.Api.Features.Agents;

public static class AgentsExtensions
{
    public const string HubPath = "/agent/ws";

    public static IHostApplicationBuilder AddStreamSpaceAgents(this IHostApplicationBuilder builder)
    {
        builder.Services.AddSingleton<AgentStore>();
        builder.Services.AddSingleton<AgentCommandQueue>();
        builder.Services.AddSingleton<AgentHubMetrics>();
        builder.Services.AddSingleton<RefusedAgentLog>();
        builder.Services.AddSingleton<AgentAdmission>();
        builder.Services.AddSingleton<AgentHub>();
        builder.Services.AddSingleton<ISessionAgents, SessionAgents>();
        builder.Services.AddSingleton<IAgentHealth, AgentHealthReader>();
        builder.Services.AddSingleton<IDatabaseNotificationHandler, AgentRevocations>();
        builder.Services.AddSingleton<IDatabaseNotificationHandler, AgentCommandNotifications>();
        builder.Services.AddSingleton<IDatabaseNotificationHandler, AgentConnectionNotifications>();
        builder.Services.AddSingleton<IDatabaseNotificationHandler, AgentRelay>();
        builder.Services.AddSingleton<IReplicaDrainStep, AgentHubDrain>();
        builder.Services.AddHostedService<CommandSweep>();
        builder.Services.AddSingleton<IAfterMigration, ProvisionedAgent>();
        builder.Services.AddHostedService<AgentLivenessMonitor>();
        builder.Services.AddHostedService<CommandTimeoutMonitor>();
        return builder;
    }

    public static WebApplication MapStreamSpaceAgents(this WebApplication app)
    {
        app.UseWebSockets(new WebSocketOptions { KeepAliveInterval = TimeSpan.FromSeconds(5) });
        var hub = app.Services.GetRequiredService<AgentHub>();
        app.Services.GetRequiredService<ApiMetrics>().ObserveAgentsConnected(() => hub.Connections.Count());
        app.Map(HubPath, hub.AcceptAsync);
        return app;
    }
}
