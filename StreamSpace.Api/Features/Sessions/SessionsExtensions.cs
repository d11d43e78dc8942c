using StreamSpace.Api.Features.Replicas;
using StreamSpace.Api.Features.Sessions.Events;
using StreamSpace.Api.Features.Sessions.List;
using StreamSpace.Api.Features.Sessions.Viewers;
using StreamSpace.Api.Features.Sessions.Vnc;
using StreamSpace.Api.Infrastructure.Database;

namespace StreamSpace.Api.Features.Sessions;

public static class SessionsExtensions
{
    public const string VncPath = "/vnc/{sessionId}";

    public static IHostApplicationBuilder AddStreamSpaceSessions(this IHostApplicationBuilder builder)
    {
        builder.Services.AddSingleton<SessionStore>();
        builder.Services.AddSingleton<ISessionHealth>(sp => sp.GetRequiredService<SessionStore>());
        builder.Services.AddSingleton<IPlacedSessions, PlacedSessions>();
        builder.Services.AddSingleton<IRecordedSessions, RecordedSessions>();
        builder.Services.AddSingleton<IUserSessions>(sp => sp.GetRequiredService<SessionStore>());
        builder.Services.AddSingleton<SessionListCache>();
        builder.Services.AddSingleton<VncTickets>();
        builder.Services.AddSingleton<VncProxy>();
        builder.Services.AddSingleton<ViewerDrain>();
        // After the hub's step (Agents registers first): viewers close once their agents have moved.
        builder.Services.AddSingleton<IReplicaDrainStep>(sp => sp.GetRequiredService<ViewerDrain>());
        builder.Services.AddSingleton<PendingStreams>();
        builder.Services.AddSingleton<Files.AgentFileStreams>();
        builder.Services.AddSingleton<DataForwarder>();
        builder.Services.AddSingleton<DataListener>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<DataListener>());
        builder.Services.AddSingleton<SessionViewers>();
        builder.Services.AddSingleton<IDatabaseNotificationHandler>(sp => sp.GetRequiredService<SessionViewers>());
        builder.Services.AddSingleton<SessionEventHub>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<SessionEventHub>());
        builder.Services.AddSingleton<IDatabaseNotificationHandler>(sp => sp.GetRequiredService<SessionEventHub>());
        builder.Services.AddHostedService<SessionCountsMonitor>();
        builder.Services.AddSingleton<ISessionUsage, SessionUsage>();
        return builder;
    }

    /// <summary>Maps the streaming endpoints that are not request/response: VNC, agents' data connections and live session events.</summary>
    public static WebApplication MapStreamSpaceSessions(this WebApplication app)
    {
        var proxy = app.Services.GetRequiredService<VncProxy>();
        app.Map(VncPath, (HttpContext context, string sessionId) => proxy.HandleAsync(context, sessionId));
        var streams = app.Services.GetRequiredService<PendingStreams>();
        var forwarder = app.Services.GetRequiredService<DataForwarder>();
        app.Map(StreamSpace.Contracts.Tunnel.DataConnection.Path, (HttpContext context) => DataConnectionEndpoint.HandleAsync(context, streams, forwarder));
        app.MapGet(SessionEventStream.Path, SessionEventStream.HandleAsync).RequireAuthorization();
        return app;
    }
}
