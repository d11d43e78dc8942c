using System.Text.Json;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Chart;

/// <summary>
/// The AppHost's published manifest (<c>--publisher manifest</c>): every resource with the env vars and endpoints the
/// AppHost gives it. It is the deployment as the code describes it; the chart is checked against it.
/// Published once per test class (xunit class fixture).
/// </summary>
public sealed class AspireManifest : IAsyncLifetime
{
    private JsonElement resources;

    /// <summary>The env var names a resource gets, e.g. "api" → JWT_SECRET, ADMIN_PASSWORD, ….</summary>
    public IReadOnlySet<string> EnvironmentOf(string resource) =>
        Resource(resource).TryGetProperty("env", out var env)
            ? env.EnumerateObject().Select(p => p.Name).ToHashSet(StringComparer.Ordinal)
            : new HashSet<string>();

    /// <summary>A resource's endpoints: binding name → scheme (e.g. "http" → "http").</summary>
    public IReadOnlyDictionary<string, string> BindingsOf(string resource) =>
        Resource(resource).TryGetProperty("bindings", out var bindings)
            ? bindings.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetProperty("scheme").GetString()!)
            : new Dictionary<string, string>();

    public IReadOnlySet<string> ResourceNames => resources.EnumerateObject().Select(p => p.Name).ToHashSet();

    public async Task InitializeAsync()
    {
        var folder = Directory.CreateTempSubdirectory("streamspace-manifest-").FullName;
        try
        {
            var path = Path.Combine(folder, "aspire-manifest.json");
            // The AppHost as built with the tests (the test project references it), started the way
            // `dotnet run --project StreamSpace.AppHost -- --publisher manifest` starts it, minus the build:
            // the build would race other builds for the same output folders.
            await ProcessRunner.RunCheckedAsync("dotnet", Repository.BuiltAssembly("StreamSpace.AppHost"),
                "--publisher", "manifest", "--output-path", path);
            using var document = JsonDocument.Parse(await File.ReadAllTextAsync(path));
            resources = document.RootElement.GetProperty("resources").Clone();
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    public Task DisposeAsync() => Task.CompletedTask;

    private JsonElement Resource(string name) =>
        resources.TryGetProperty(name, out var resource)
            ? resource
            : throw new Xunit.Sdk.XunitException($"the AppHost's manifest has no resource '{name}'; it has: {string.Join(", ", ResourceNames)}");
}
