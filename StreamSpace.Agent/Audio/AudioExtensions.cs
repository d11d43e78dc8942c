namespace StreamSpace.Agent.Audio;

public static class AudioExtensions
{
    /// <summary>The audio streams of sessions: captured here for local sessions, relayed to a pod's file service otherwise.</summary>
    public static IServiceCollection AddSessionAudio(this IServiceCollection services)
    {
        services.AddSingleton<SessionAudioStreams>();
        return services;
    }
}
