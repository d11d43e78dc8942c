using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Npgsql;

namespace StreamSpace.AppHost;

/// <summary>
/// Chooses where StreamSpace's PostgreSQL comes from, in this order:
/// a connection string given as <c>ConnectionStrings:streamspace</c>; a container where a container runtime works;
/// otherwise Debian's PostgreSQL binaries run as executables, with data under the state directory.
/// </summary>
internal static class PostgresExtensions
{
    public const string DatabaseName = "streamspace";

    public static IResourceBuilder<IResourceWithConnectionString> AddStreamSpaceDatabase(this IDistributedApplicationBuilder builder)
    {
        var configured = builder.Configuration.GetSection("ConnectionStrings")[DatabaseName];
        if (configured is not null)
        {
            // An empty connection string would make the AppHost wait forever, so refuse it here.
            if (string.IsNullOrWhiteSpace(configured))
            {
                throw new InvalidOperationException($"ConnectionStrings:{DatabaseName} is set but empty; give a PostgreSQL connection string or remove it.");
            }

            return builder.AddConnectionString(DatabaseName);
        }

        var mode = builder.Configuration["StreamSpace:Postgres"] ?? "auto";
        var runtime = builder.Configuration["ASPIRE_CONTAINER_RUNTIME"] ?? "docker";
        return mode switch
        {
            "container" => builder.AddContainerPostgres(),
            "local" => builder.AddLocalPostgres(),
            "auto" => ContainerRuntime.IsHealthy(runtime) ? builder.AddContainerPostgres() : builder.AddLocalPostgres(),
            _ => throw new InvalidOperationException($"StreamSpace:Postgres is '{mode}'; use auto, container or local."),
        };
    }

    private static IResourceBuilder<IResourceWithConnectionString> AddContainerPostgres(this IDistributedApplicationBuilder builder) =>
        builder.AddPostgres("postgres").WithDataVolume("streamspace-postgres").AddDatabase(DatabaseName);

    private static IResourceBuilder<IResourceWithConnectionString> AddLocalPostgres(this IDistributedApplicationBuilder builder)
    {
        var dataDirectory = Path.Combine(StateDirectory(builder), "postgres");
        var binDirectory = builder.Configuration["StreamSpace:PostgresBin"] ?? FindPostgresBin();
        var scripts = Path.Combine(builder.AppHostDirectory, "Postgres");

        // Password (SCRAM) authentication only: session accounts on this machine must not reach the database.
        // Generated once, then kept in the AppHost's user secrets; it reaches init.sh in the environment, never argv.
        var password = builder.AddParameter("postgres-password", new GenerateParameterDefault { MinLength = 32, Special = false }, secret: true, persist: true);

        var init = builder.AddExecutable("postgres-init", "bash", builder.AppHostDirectory,
                Path.Combine(scripts, "init.sh"), dataDirectory, binDirectory, DatabaseName)
            .WithEnvironment("PGPASSWORD", password);

        var server = builder.AddExecutable("postgres", "bash", builder.AppHostDirectory,
                Path.Combine(scripts, "run.sh"), dataDirectory, binDirectory)
            .WithEndpoint(name: "tcp", scheme: "tcp", env: "PGPORT", isProxied: false)
            .WaitForCompletion(init);

        var endpoint = server.GetEndpoint("tcp");
        var connectionString = ReferenceExpression.Create(
            $"Host=127.0.0.1;Port={endpoint.Property(EndpointProperty.Port)};Username=postgres;Password={password};Database={DatabaseName}");

        const string healthCheck = "postgres-accepts-connections";
        builder.Services.AddHealthChecks().AddAsyncCheck(healthCheck, async cancellationToken =>
        {
            try
            {
                await using var connection = new NpgsqlConnection(await connectionString.GetValueAsync(cancellationToken));
                await connection.OpenAsync(cancellationToken);
                return HealthCheckResult.Healthy();
            }
            catch (Exception e) when (e is NpgsqlException or InvalidOperationException)
            {
                return HealthCheckResult.Unhealthy(e.Message);
            }
        });
        server.WithHealthCheck(healthCheck);

        return builder.AddConnectionString(DatabaseName, connectionString).WithParentRelationship(server).WaitFor(server);
    }

    /// <summary>Where local state (the development database) lives: <c>.state/</c> beside the solution, ignored by git.</summary>
    public static string StateDirectory(IDistributedApplicationBuilder builder) =>
        builder.Configuration["StreamSpace:StateDirectory"] ?? Path.GetFullPath(Path.Combine(builder.AppHostDirectory, "..", ".state"));

    private static string FindPostgresBin()
    {
        const string root = "/usr/lib/postgresql";
        var newest = Directory.Exists(root)
            ? Directory.GetDirectories(root).Select(d => Path.Combine(d, "bin")).Where(d => File.Exists(Path.Combine(d, "postgres")))
                .OrderByDescending(d => int.TryParse(Path.GetFileName(Path.GetDirectoryName(d)), out var v) ? v : 0).FirstOrDefault()
            : null;
        return newest ?? throw new InvalidOperationException(
            "No container runtime works and PostgreSQL is not installed: run `apt-get install postgresql`, or set ConnectionStrings:streamspace.");
    }
}
