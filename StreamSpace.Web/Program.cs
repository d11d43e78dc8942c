using StreamSpace.Settings;
using StreamSpace.Web.Components;
using StreamSpace.Web.Services.Api;
using StreamSpace.Web;
using StreamSpace.Web.Services.Auth;
using StreamSpace.Web.Services.DataProtection;
using StreamSpace.Web.Services.Proxy;
using StreamSpace.Web.Services.Viewer;

return await StartupGuard.RunAsync(async () =>
{
    var builder = WebApplication.CreateBuilder(args);
    // Serves framework files such as blazor.web.js from a build (not only a publish) in every environment, so
    // `dotnet run` and end-to-end tests work outside Development. A no-op in published output.
    builder.WebHost.UseStaticWebAssets();

    builder.AddServiceDefaults();
    builder.AddTrustedProxies();
    var settings = SettingsBinder.Bind<WebSettings>(builder.Configuration);
    builder.Services.AddSingleton(settings);
    builder.AddStreamSpaceDataProtection(settings);
    builder.AddStreamSpaceApi();
    builder.AddStreamSpaceAuth(settings);
    builder.AddStreamSpaceProxy();
    builder.Services.AddRazorComponents()
        .AddInteractiveServerComponents();

    var app = builder.Build();
    app.UseTrustedProxies();

    if (!app.Environment.IsDevelopment())
    {
        app.UseExceptionHandler("/error", createScopeForErrors: true);
    }

    app.UseStatusCodePagesWithReExecute("/not-found", createScopeForStatusCodePages: true);
    app.UseStreamSpaceAuth();
    app.UseAntiforgery();

    app.MapStaticAssets();
    app.MapRazorComponents<App>()
        .AddInteractiveServerRenderMode();
    app.MapStreamSpaceAuth();
    app.MapStreamSpaceProxy();
    app.MapViewerEndpoints();
    app.MapDefaultEndpoints("streamspace-web");

    await app.RunAsync();
});
