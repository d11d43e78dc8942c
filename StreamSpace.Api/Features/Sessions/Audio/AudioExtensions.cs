namespace StreamSpace.Api.Features.Sessions.Audio;

/// <summary>A session's sound in the viewer (issue 18): the audio URL issued beside a viewer's ticket, and the /audio WebSocket.</summary>
public static class AudioExtensions
{
    public const string AudioPath = "/audio/{sessionId}";

    public static IHostApplicationBuilder AddStreamSpaceAudio(this IHostApplicationBuilder builder)
    {
        builder.Services.AddSingleton<AudioTickets>();
        builder.Services.AddSingleton<AudioProxy>();
        return builder;
    }

    public static WebApplication MapStreamSpaceAudio(this WebApplication app)
    {
        var proxy = app.Services.GetRequiredService<AudioProxy>();
        app.Map(AudioPath, (HttpContext context, string sessionId) => proxy.HandleAsync(context, sessionId));
        return app;
    }
}
