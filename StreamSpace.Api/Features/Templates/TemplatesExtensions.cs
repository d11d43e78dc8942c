using StreamSpace.Api.Infrastructure.Database;

namespace StreamSpace.Api.Features.Templates;

public static class TemplatesExtensions
{
    public static IHostApplicationBuilder AddStreamSpaceTemplates(this IHostApplicationBuilder builder)
    {
        builder.Services.AddSingleton<TemplateStore>();
        builder.Services.AddSingleton<ITemplateCatalog>(sp => sp.GetRequiredService<TemplateStore>());
        builder.Services.AddSingleton<IAfterMigration, TemplateCatalogSeed>();
        return builder;
    }
}
