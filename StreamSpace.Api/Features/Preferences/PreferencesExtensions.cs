namespace StreamSpace.Api.Features.Preferences;

public static class PreferencesExtensions
{
    public static IHostApplicationBuilder AddStreamSpacePreferences(this IHostApplicationBuilder builder)
    {
        builder.Services.AddSingleton<ViewerPreferenceStore>();
        return builder;
    }
}
