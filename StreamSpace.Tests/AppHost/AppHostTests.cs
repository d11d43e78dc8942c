using System.Net;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Aspire.Hosting.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace StreamSpace.Tests.AppHost;

/// <summary>The distributed application as `./streamspace up` runs it, on a machine without a container runtime.</summary>
public sealed class AppHostTests
{
    [Fact]
    public async Task Without_containers_the_apphost_runs_local_postgres_and_serves_api_health_and_web()
    {
        var state = Directory.CreateTempSubdirectory("streamspace-apphost-").FullName;
        if (Environment.UserName == "root")
        {
            // The local PostgreSQL runs as the postgres user, which must reach its data folder.
            File.SetUnixFileMode(state, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute |
                UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        }

        try
        {
            var builder = await DistributedApplicationTestingBuilder.CreateAsync<Projects.StreamSpace_AppHost>(
                [$"StreamSpace:StateDirectory={state}", "StreamSpace:Postgres=local"]);
            await using var app = await builder.BuildAsync();
            using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
            await app.StartAsync(timeout.Token);

            var notifications = app.Services.GetRequiredService<ResourceNotificationService>();
            await notifications.WaitForResourceHealthyAsync("api", timeout.Token);
            await notifications.WaitForResourceHealthyAsync("web", timeout.Token);

            using var api = app.CreateHttpClient("api");
            var health = await api.GetAsync("/health", timeout.Token);
            Assert.Equal(HttpStatusCode.OK, health.StatusCode);
            Assert.Equal("""{"service":"streamspace-api","status":"healthy"}""", await health.Content.ReadAsStringAsync(timeout.Token));

            using var web = app.CreateHttpClient("web");
            var login = await web.GetAsync("/login", timeout.Token);
            Assert.Equal(HttpStatusCode.OK, login.StatusCode);
            Assert.Contains("password", await login.Content.ReadAsStringAsync(timeout.Token), StringComparison.OrdinalIgnoreCase);

            await app.StopAsync(timeout.Token);
        }
        finally
        {
            Directory.Delete(state, recursive: true);
        }
    }
}
