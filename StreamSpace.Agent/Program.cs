using StreamSpace.Agent;
using StreamSpace.Agent.Doctor;
using StreamSpace.Settings;

return await StartupGuard.RunAsync(async () =>
{
    var builder = Host.CreateApplicationBuilder(args);
    if (args is ["doctor", ..])
    {
        Environment.ExitCode = await AgentDoctor.RunAsync(SettingsBinder.Bind<AgentSettings>(builder.Configuration), Console.Out);
        return;
    }

    builder.AddServiceDefaults();
    builder.AddStreamSpaceAgent();
    await builder.Build().RunAsync();
});
