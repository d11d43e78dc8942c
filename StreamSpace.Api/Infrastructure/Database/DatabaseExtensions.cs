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
        });

        // Columns are snake_case; records are PascalCase.
        DefaultTypeMap.MatchNamesWithUnderscores = true;

        builder.Services.AddSingleton<DatabaseMigrator>();
        builder.Services.AddHostedService<DatabaseInitializer>();
        builder.Services.AddHealthChecks().AddCheck<DatabaseHealthCheck>("database", timeout: TimeSpan.FromSeconds(5));
        return builder;
    }
}
