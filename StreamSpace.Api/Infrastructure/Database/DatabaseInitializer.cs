using Npgsql;
using StreamSpace.Settings;

namespace StreamSpace.Api.Infrastructure.Database;

/// <summary>Work that needs the migrated schema before the API serves requests, such as seeding the admin.</summary>
public interface IAfterMigration
{
    Task RunAsync(CancellationToken cancellationToken);
}

/// <summary>
/// Runs before Kestrel accepts requests: waits for PostgreSQL, applies migrations, then runs the
/// <see cref="IAfterMigration"/> steps. A missing table can therefore never surprise a request handler.
/// </summary>
public sealed class DatabaseInitializer(
    NpgsqlDataSource dataSource,
    DatabaseMigrator migrator,
    IEnumerable<IAfterMigration> afterMigration,
    ILogger<DatabaseInitializer> logger) : IHostedService
{
    /// <summary>How long start-up waits for PostgreSQL before it gives up with a clear error.</summary>
    public static readonly TimeSpan WaitForDatabase = TimeSpan.FromSeconds(60);

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await WaitUntilReachableAsync(cancellationToken);
        await migrator.MigrateAsync(cancellationToken);
        foreach (var step in afterMigration)
        {
            await step.RunAsync(cancellationToken);
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    private async Task WaitUntilReachableAsync(CancellationToken cancellationToken)
    {
        var builder = new NpgsqlConnectionStringBuilder(dataSource.ConnectionString);
        var target = $"{builder.Host}:{builder.Port}/{builder.Database}";
        var deadline = DateTime.UtcNow + WaitForDatabase;
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
                if (attempt > 1)
                {
                    logger.LogInformation("PostgreSQL at {Target} is reachable after {Attempts} attempts", target, attempt);
                }

                return;
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException && !cancellationToken.IsCancellationRequested)
            {
                if (DateTime.UtcNow >= deadline)
                {
                    throw new InvalidSettingException("ConnectionStrings__streamspace",
                        $"points at PostgreSQL {target}, which did not accept a connection within {WaitForDatabase.TotalSeconds:0}s: {e.Message}. Check that the database runs and the connection string is right.");
                }

                logger.LogWarning("Waiting for PostgreSQL at {Target} (attempt {Attempt}): {Reason}", target, attempt, e.Message);
                await Task.Delay(TimeSpan.FromSeconds(Math.Min(attempt, 5)), cancellationToken);
            }
        }
    }
}
