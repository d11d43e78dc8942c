namespace StreamSpace.Api.Features.Recordings;

public static class RecordingsExtensions
{
    /// <summary>The recordings catalog, what agents report and are told about recordings, retention, and the storage check.</summary>
    public static IHostApplicationBuilder AddStreamSpaceRecordings(this IHostApplicationBuilder builder)
    {
        builder.Services.AddSingleton<RecordingCatalog>();
        builder.Services.AddSingleton<RecordingDeletes>();
        builder.Services.AddSingleton<IAgentRecordings, AgentRecordings>();
        builder.Services.AddSingleton<IRecordingHealth, RecordingHealth>();
        builder.Services.AddSingleton<RecordingRetention>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<RecordingRetention>());
        return builder;
    }
}
