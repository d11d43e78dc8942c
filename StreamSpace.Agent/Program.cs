using StreamSpace.Agent;
using StreamSpace.Agent.Doctor;
using StreamSpace.Agent.Files;
using StreamSpace.Settings;

return await StartupGuard.RunAsync(async () =>
{
    var builder = Host.CreateApplicationBuilder(args);
    if (args is ["doctor", ..])
    {
        Environment.ExitCode = await AgentDoctor.RunAsync(SettingsBinder.Bind<AgentSettings>(builder.Configuration), Console.Out);
        return;
    }

    if (args is ["files-serve", ..])
    {
        // In a Kubernetes session pod, as the session's user: no control plane, no telemetry, only the file service.
        builder.AddFileService();
        await builder.Build().RunAsync();
        return;
    }

    builder.AddServiceDefaults();
    builder.AddStreamSpaceAgent();
    await builder.Build().RunAsync();
});
