using Dapper;

namespace StreamSpace.Api.Infrastructure.Database;

public static class DatabaseExtensions
{
    public static IHostApplicationBuilder AddStreamSpaceDatabase(this IHostApplicationBuilder builder, ApiSettings settings)
    {
        builder.AddNpgsqlDataSource(ApiSettings.ConnectionName, npgsql =>
        {
            npgsql.ConnectionString = settings.ConnectionString;
            // Our own check also verifies the schema version, and names the database in its reason.
            npgsql.DisableHealthChecks = true;
        }, dataSource =>
        {
            // The same few statements run thousands of times a second (session lists, heartbeats): prepared once per
            // connection, PostgreSQL skips parsing and planning them. Pooled connections carry no session state
            // worth a DISCARD ALL round trip at every reuse (locks are transaction-scoped or released explicitly).
            dataSource.ConnectionStringBuilder.MaxAutoPrepare = Math.Max(dataSource.ConnectionStringBuilder.MaxAutoPrepare, 64);
            dataSource.ConnectionStringBuilder.NoResetOnClose = true;
        });

        // Columns are snake_case; records are PascalCase.
        DefaultTypeMap.MatchNamesWithUnderscores = true;

        builder.Services.AddSingleton<DatabaseMigrator>();
        builder.Services.AddHostedService<DatabaseInitializer>();
        builder.Services.AddHostedService<DatabaseNotifications>();
        builder.Services.AddHealthChecks().AddCheck<DatabaseHealthCheck>("database", timeout: TimeSpan.FromSeconds(5));
        return builder;
    }
}
