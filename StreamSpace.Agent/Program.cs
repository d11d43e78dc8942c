using StreamSpace.Agent;
using StreamSpace.Settings;

return await StartupGuard.RunAsync(async () =>
{
    var builder = Host.CreateApplicationBuilder(args);
    builder.AddServiceDefaults();
    builder.AddStreamSpaceAgent();
    await builder.Build().RunAsync();
});
