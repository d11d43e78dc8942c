using System.Net;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Aspire.Hosting.Testing;
using System.Net.Http.Json;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using StreamSpace.Contracts;
using StreamSpace.Tests.Api.Features.Sessions;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.AppHost;

/// <summary>The distributed application as `./streamspace up` runs it, on a machine without a container runtime.</summary>
public sealed class AppHostTests
{
    private const string AdminPassword = "apphost-test-admin-password";

    /// <summary>
    /// API processes behind Aspire's proxy, as `./streamspace up --replicas 2` runs them: the launch, the ticket and the
    /// viewer each land on either replica, so this tests the distribution (issue 16).
    /// </summary>
    private const int ApiReplicas = 2;

    [Fact]
    public async Task Without_containers_the_apphost_runs_local_postgres_and_serves_api_health_and_web_and_a_desktop_through_vnc()
    {
        var state = Directory.CreateTempSubdirectory("streamspace-apphost-").FullName;
        var agentData = Path.Combine(state, "agent-data");
        if (Environment.UserName == "root")
        {
            // The local PostgreSQL runs as the postgres user, which must pass through to its data folder (0711, as
            // `./streamspace up` makes /var/lib/streamspace).
            File.SetUnixFileMode(state, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute |
                UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);
        }

        try
        {
            // As `./streamspace up` passes them: the agent's data folder, and no per-user accounts unless run as root.
            string[] args = [$"StreamSpace:StateDirectory={state}", $"StreamSpace:AgentDataDirectory={agentData}", "StreamSpace:Postgres=local",
                $"Parameters:admin-password={AdminPassword}", $"StreamSpace:ApiReplicas={ApiReplicas}"];
            if (Environment.UserName != "root")
            {
                args = [.. args, "StreamSpace:LocalIsolation=none"];
            }

            var builder = await DistributedApplicationTestingBuilder.CreateAsync<Projects.StreamSpace_AppHost>(args);
            await using var app = await builder.BuildAsync();
            using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
            await app.StartAsync(timeout.Token);

            var notifications = app.Services.GetRequiredService<ResourceNotificationService>();
            await notifications.WaitForResourceHealthyAsync("api", timeout.Token);
            await notifications.WaitForResourceHealthyAsync("web", timeout.Token);

            // The local PostgreSQL lets in only who knows its password: not another account on this machine.
            var connectionString = await app.GetConnectionStringAsync("streamspace", timeout.Token);
            var withPassword = new NpgsqlConnectionStringBuilder(connectionString);
            Assert.False(string.IsNullOrEmpty(withPassword.Password), "the connection string carries the password");
            await using (var connection = new NpgsqlConnection(connectionString))
            {
                await connection.OpenAsync(timeout.Token);
            }

            var wrongPassword = new NpgsqlConnectionStringBuilder(connectionString) { Password = "not-the-password", Pooling = false };
            var refused = await Assert.ThrowsAsync<PostgresException>(async () =>
            {
                await using var connection = new NpgsqlConnection(wrongPassword.ConnectionString);
                await connection.OpenAsync(timeout.Token);
            });
            Assert.Equal(PostgresErrorCodes.InvalidPassword, refused.SqlState);
            var noPassword = new NpgsqlConnectionStringBuilder(connectionString) { Password = null, Pooling = false };
            await Assert.ThrowsAnyAsync<NpgsqlException>(async () =>
            {
                await using var connection = new NpgsqlConnection(noPassword.ConnectionString);
                await connection.OpenAsync(timeout.Token);
            });
            // Its socket is in a folder only the cluster's owner may enter.
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute,
                File.GetUnixFileMode(Path.Combine(state, "postgres-socket")));

            using var api = app.CreateHttpClient("api");
            var health = await api.GetAsync("/health", timeout.Token);
            Assert.Equal(HttpStatusCode.OK, health.StatusCode);
            Assert.Equal("""{"service":"streamspace-api","status":"healthy"}""", await health.Content.ReadAsStringAsync(timeout.Token));

            using var web = app.CreateHttpClient("web");
            var loginPage = await web.GetAsync("/login", timeout.Token);
            Assert.Equal(HttpStatusCode.OK, loginPage.StatusCode);
            Assert.Contains("password", await loginPage.Content.ReadAsStringAsync(timeout.Token), StringComparison.OrdinalIgnoreCase);

            // The distributed path: log in, launch the xterm template on the AppHost's local agent, and
            // complete the RFB handshake through the control plane's /vnc tunnel.
            var login = await api.PostAsJsonAsync("/api/v1/auth/login", new { username = "admin", password = AdminPassword }, timeout.Token);
            var token = (await login.AssertJsonAsync(HttpStatusCode.OK)).GetProperty("token").GetString();
            api.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
            await Eventually.TrueAsync(async () => (await api.GetStringAsync("/api/v1/agents/local-agent", timeout.Token)).Contains("\"status\":\"online\""),
                TimeSpan.FromSeconds(60), "the local agent to come online");
            var id = (await api.LaunchAsync()).Id;
            await api.WaitForStateAsync(id, SessionState.Running);
            // The session's home is in the configured agent data folder, keyed by the user's id.
            var adminId = await api.UserIdAsync();
            Assert.True(Directory.Exists(Path.Combine(agentData, "homes", adminId.ToString())), $"no home for admin ({adminId}) under {agentData}");
            using var viewer = await RfbViewer.ConnectAsync(api.BaseAddress!, await api.ConnectUrlAsync(id));
            var desktop = await viewer.HandshakeAsync();
            Assert.Equal(id, desktop.Name);
            Assert.Equal(HttpStatusCode.Accepted, (await api.DeleteAsync($"/api/v1/sessions/{id}", timeout.Token)).StatusCode);
            await api.WaitForStateAsync(id, SessionState.Stopped);

            // The dashboard: the agent is healthy while connected, and the diagnostics row is healthy when every check
            // of a fresh local stack passes (`./streamspace doctor` prints the same report).
            await notifications.WaitForResourceHealthyAsync("agent", timeout.Token);
            var diagnostics = await notifications.WaitForResourceHealthyAsync("diagnostics", timeout.Token);
            Assert.Contains(diagnostics.Snapshot.HealthReports, report => report.Description?.StartsWith("all ", StringComparison.Ordinal) == true);

            await app.StopAsync(timeout.Token);
        }
        finally
        {
            await AgentHost.RemoveSessionAccountsAsync(agentData);
            Directory.Delete(state, recursive: true);
        }
    }
}
