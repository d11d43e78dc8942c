using Microsoft.Extensions.Diagnostics.HealthChecks;
using Npgsql;

namespace StreamSpace.Api.Infrastructure.Database;

/// <summary>Healthy while PostgreSQL answers and holds the schema this build expects.</summary>
public sealed class DatabaseHealthCheck(NpgsqlDataSource dataSource) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
            var version = await DatabaseMigrator.AppliedVersionAsync(connection, cancellationToken);
            return version >= DatabaseMigrator.LatestVersion
                ? HealthCheckResult.Healthy()
                : HealthCheckResult.Unhealthy($"schema is at migration {version}, this API needs {DatabaseMigrator.LatestVersion}; restart the API so it migrates");
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or InvalidOperationException)
        {
            return HealthCheckResult.Unhealthy($"unreachable: {e.Message}");
        }
    }
}
