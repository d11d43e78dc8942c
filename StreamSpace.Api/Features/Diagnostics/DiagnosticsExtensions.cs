namespace StreamSpace.Api.Features.Diagnostics;

public static class DiagnosticsExtensions
{
    public static IHostApplicationBuilder AddStreamSpaceDiagnostics(this IHostApplicationBuilder builder)
    {
        builder.Services.AddSingleton<DiagnosticsService>();
        return builder;
    }
}
