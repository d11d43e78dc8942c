using StreamSpace.Api.Features.Audit;
using StreamSpace.Api.Infrastructure.Database;

namespace StreamSpace.Api.Features.Templates;

/// <summary>At first start (an empty catalog) seeds a terminal desktop and a browser, so a new install can launch something at once.</summary>
public sealed class TemplateCatalogSeed(TemplateStore templates, ILogger<TemplateCatalogSeed> logger) : IAfterMigration
{
    public static readonly IReadOnlyList<TemplateBody> Catalog =
    [
        new("xterm", "Terminal desktop", "An openbox desktop with an xterm terminal.", "Desktop", "terminal",
            "ghcr.io/streamspace-dev/streamspace-session-xterm:0.1.0", "xterm", 5900, new("500m", "512Mi"), [], true, "30m", null),
        new("chromium-browser", "Chromium", "The Chromium web browser on an openbox desktop.", "Browser", "globe",
            "ghcr.io/streamspace-dev/streamspace-session-chromium:0.1.0",
            // The sandbox needs user namespaces, which an agent running as root or in a container rarely has.
            "chromium --no-sandbox --no-first-run --disable-gpu --disable-dev-shm-usage --disable-background-networking --disable-sync",
            5900, new("1", "1Gi"), [], true, "30m", null),
    ];

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        if (await templates.AnyAsync(cancellationToken))
        {
            return;
        }

        foreach (var template in Catalog)
        {
            await templates.SaveAsync(Actor.System, template, replace: false, cancellationToken);
        }

        logger.LogInformation("Seeded the template catalog: {Templates}", string.Join(", ", Catalog.Select(t => t.Name)));
    }
}
