using System.Reflection;
using Dapper;
using Npgsql;

namespace StreamSpace.Api.Infrastructure.Database;

/// <summary>One versioned SQL script embedded in the API, named <c>NNNN_description.sql</c>.</summary>
public sealed record Migration(int Version, string Name, string Sql);

/// <summary>
/// Applies the embedded migrations in order, each in its own transaction, under a PostgreSQL advisory lock
/// so that API replicas starting together apply each migration exactly once.
/// </summary>
public sealed class DatabaseMigrator(NpgsqlDataSource dataSource, ILogger<DatabaseMigrator> logger)
{
    // Any fixed 64-bit number works; this one spells "STRMSP" so it is recognisable in pg_locks.
    private const long AdvisoryLockKey = 0x5354_524D_5350;

    public static IReadOnlyList<Migration> All { get; } = LoadEmbedded();

    public static int LatestVersion => All[^1].Version;

    public async Task MigrateAsync(CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition("SELECT pg_advisory_lock(@AdvisoryLockKey)", new { AdvisoryLockKey }, cancellationToken: cancellationToken));
        try
        {
            await connection.ExecuteAsync(new CommandDefinition(
                """
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    version    integer PRIMARY KEY,
                    name       text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now()
                )
                """, cancellationToken: cancellationToken));

            var applied = (await connection.QueryAsync<int>(new CommandDefinition("SELECT version FROM schema_migrations", cancellationToken: cancellationToken))).ToHashSet();
            foreach (var migration in All.Where(m => !applied.Contains(m.Version)))
            {
                await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
                await connection.ExecuteAsync(new CommandDefinition(migration.Sql, transaction: transaction, cancellationToken: cancellationToken));
                await connection.ExecuteAsync(new CommandDefinition(
                    "INSERT INTO schema_migrations (version, name) VALUES (@Version, @Name)", migration, transaction, cancellationToken: cancellationToken));
                await transaction.CommitAsync(cancellationToken);
                logger.LogInformation("Applied database migration {Version:D4} {Name}", migration.Version, migration.Name);
            }
        }
        finally
        {
            await connection.ExecuteAsync("SELECT pg_advisory_unlock(@AdvisoryLockKey)", new { AdvisoryLockKey });
        }
    }

    /// <summary>The newest migration applied to the database, or 0 when none is.</summary>
    public static async Task<int> AppliedVersionAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        var tableExists = await connection.ExecuteScalarAsync<bool>(new CommandDefinition(
            "SELECT to_regclass('schema_migrations') IS NOT NULL", cancellationToken: cancellationToken));
        return tableExists
            ? await connection.ExecuteScalarAsync<int?>(new CommandDefinition("SELECT max(version) FROM schema_migrations", cancellationToken: cancellationToken)) ?? 0
            : 0;
    }

    private static List<Migration> LoadEmbedded()
    {
        var assembly = typeof(DatabaseMigrator).Assembly;
        const string prefix = "Migrations.";
        var migrations = assembly.GetManifestResourceNames()
            .Where(n => n.StartsWith(prefix, StringComparison.Ordinal) && n.EndsWith(".sql", StringComparison.Ordinal))
            .Select(n =>
            {
                var file = n[prefix.Length..^".sql".Length];
                var separator = file.IndexOf('_', StringComparison.Ordinal);
                using var reader = new StreamReader(assembly.GetManifestResourceStream(n)!);
                return new Migration(int.Parse(file[..separator], System.Globalization.CultureInfo.InvariantCulture), file[(separator + 1)..], reader.ReadToEnd());
            })
            .OrderBy(m => m.Version)
            .ToList();

        if (migrations.Count == 0 || migrations.Select(m => m.Version).Distinct().Count() != migrations.Count)
        {
            throw new InvalidOperationException("The API was built without its migrations, or with two migrations of one version.");
        }

        return migrations;
    }
}
