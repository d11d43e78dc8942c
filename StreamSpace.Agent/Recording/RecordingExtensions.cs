namespace StreamSpace.Agent.Recording;

public static class RecordingExtensions
{
    /// <summary>The session recorder, its files, and the download and export streams of recordings.</summary>
    public static IServiceCollection AddSessionRecordings(this IServiceCollection services)
    {
        services.AddSingleton<RecordingFiles>();
        services.AddSingleton<SessionRecordings>();
        services.AddSingleton<RecordingStreamService>();
        services.AddHostedService(sp => sp.GetRequiredService<SessionRecordings>());
        return services;
    }
}
