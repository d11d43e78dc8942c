using FastEndpoints;
using FastEndpoints.Swagger;
using StreamSpace.Api;
using StreamSpace.Api.Features.Agents;
using StreamSpace.Api.Features.Diagnostics;
using StreamSpace.Api.Features.Groups;
using StreamSpace.Api.Features.Replicas;
using StreamSpace.Api.Features.Sessions;
using StreamSpace.Api.Features.Sessions.Audio;
using StreamSpace.Api.Features.Shares;
using StreamSpace.Api.Features.Preferences;
using StreamSpace.Api.Features.Recordings;
using StreamSpace.Api.Features.Templates;
using StreamSpace.Api.Features.Tokens;
using StreamSpace.Api.Features.Auth;
using StreamSpace.Api.Features.Users;
using StreamSpace.Api.Infrastructure;
using StreamSpace.Api.Infrastructure.Database;
using StreamSpace.Api.Infrastructure.Metrics;
using StreamSpace.Settings;

return await StartupGuard.RunAsync(async () =>
{
    var builder = WebApplication.CreateBuilder(args);
    var settings = builder.AddApiSettings();

    builder.AddServiceDefaults();
    builder.AddTrustedProxies();
    builder.AddStreamSpaceMetrics();
    builder.AddStreamSpaceDatabase(settings);
    builder.AddStreamSpaceReplicas();
    builder.AddStreamSpaceAuth(settings);
    builder.AddStreamSpaceTokens();
    builder.AddStreamSpaceUsers();
    builder.AddStreamSpaceAgents();
    builder.AddStreamSpaceTemplates();
    builder.AddStreamSpaceGroups();
    builder.AddStreamSpacePreferences();
    builder.AddStreamSpaceSessions();
    builder.AddStreamSpaceAudio();
    builder.AddStreamSpaceShares();
    builder.AddStreamSpaceRecordings();
    builder.AddStreamSpaceDiagnostics();
    builder.AddStreamSpaceEndpoints();

    var app = builder.Build();

    app.UseTrustedProxies();
    app.UseStreamSpaceErrors();
    app.UseStreamSpaceAuth();
    app.UseStreamSpaceTokens();
    app.MapStreamSpaceEndpoints();
    app.MapStreamSpaceAgents();
    app.MapStreamSpaceSessions();
    app.MapStreamSpaceAudio();
    app.MapDefaultEndpoints("streamspace-api");
    app.MapStreamSpaceMetrics();

    await app.RunAsync();
});
