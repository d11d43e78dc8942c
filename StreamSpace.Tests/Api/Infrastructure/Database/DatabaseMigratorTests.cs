using Dapper;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using StreamSpace.Api.Infrastructure.Database;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Api.Infrastructure.Database;

public sealed class DatabaseMigratorTests
{
    [Fact]
    public async Task Two_migrators_starting_together_apply_each_migration_once_and_leave_one_schema()
    {
        await using var dataSource = NpgsqlDataSource.Create(await SharedPostgres.CreateDatabaseAsync());
        var first = new DatabaseMigrator(dataSource, NullLogger<DatabaseMigrator>.Instance);
        var second = new DatabaseMigrator(dataSource, NullLogger<DatabaseMigrator>.Instance);

        await Task.WhenAll(Task.Run(() => first.MigrateAsync(CancellationToken.None)), Task.Run(() => second.MigrateAsync(CancellationToken.None)));

        await using var connection = await dataSource.OpenConnectionAsync();
        var versions = (await connection.QueryAsync<int>("SELECT version FROM schema_migrations ORDER BY version")).ToList();
        Assert.Equal(DatabaseMigrator.All.Select(m => m.Version), versions);

        var tables = (await connection.QueryAsync<string>(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")).ToHashSet();
        foreach (var table in new[] { "users", "templates", "sessions", "agents", "agent_commands", "audit_log" })
        {
            Assert.Contains(table, tables);
        }

        var sessionColumns = (await connection.QueryAsync<string>(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'sessions'")).ToHashSet();
        Assert.Superset(new HashSet<string> { "state", "failure_reason", "user_id", "template", "agent_id", "platform", "platform_metadata", "created_at", "updated_at" }, sessionColumns);
    }

    [Fact]
    public async Task Migrating_again_changes_nothing()
    {
        await using var dataSource = NpgsqlDataSource.Create(await SharedPostgres.CreateDatabaseAsync());
        var migrator = new DatabaseMigrator(dataSource, NullLogger<DatabaseMigrator>.Instance);
        await migrator.MigrateAsync(CancellationToken.None);
        await migrator.MigrateAsync(CancellationToken.None);

        await using var connection = await dataSource.OpenConnectionAsync();
        Assert.Equal(DatabaseMigrator.All.Count, await connection.ExecuteScalarAsync<int>("SELECT count(*) FROM schema_migrations"));
        Assert.Equal(DatabaseMigrator.LatestVersion, await DatabaseMigrator.AppliedVersionAsync(connection, CancellationToken.None));
    }
}
