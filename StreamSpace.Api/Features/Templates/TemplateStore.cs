using System.Text.Json;
using Dapper;
using Npgsql;
using StreamSpace.Api.Features.Audit;
using StreamSpace.Settings;

namespace StreamSpace.Api.Features.Templates;

/// <summary>The template catalog. Admin changes are audited in the same transaction.</summary>
public sealed class TemplateStore(NpgsqlDataSource dataSource) : ITemplateCatalog
{
    private const string Columns = "name, display_name, description, category, icon, image, command, vnc_port, cpu, memory, env::text AS env, persistent_home, idle_timeout, max_duration, clipboard_to_browser, clipboard_to_session, sharing, audio, record";

    public async Task<IReadOnlyList<TemplateRow>> ListAsync(CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return [.. await connection.QueryAsync<TemplateRow>(new CommandDefinition($"SELECT {Columns} FROM templates ORDER BY category, display_name", cancellationToken: cancellationToken))];
    }

    public async Task<TemplateRow?> GetAsync(string name, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return await GetAsync(connection, null, name, cancellationToken);
    }

    public Task<TemplateRow?> GetAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, string name, CancellationToken cancellationToken) =>
        connection.QuerySingleOrDefaultAsync<TemplateRow>(new CommandDefinition($"SELECT {Columns} FROM templates WHERE name = @name", new { name }, transaction, cancellationToken: cancellationToken));

    /// <summary>Creates the template, or with <paramref name="replace"/> replaces it; returns false when that is not possible.</summary>
    public async Task<bool> SaveAsync(Actor actor, TemplateBody body, bool replace, CancellationToken cancellationToken)
    {
        var row = new
        {
            body.Name,
            body.DisplayName,
            Description = body.Description ?? "",
            Category = body.Category ?? "",
            Icon = body.Icon ?? "",
            body.Image,
            body.Command,
            VncPort = body.VncPort ?? 5900,
            body.Resources?.Cpu,
            body.Resources?.Memory,
            Env = JsonSerializer.Serialize(body.Env ?? []),
            PersistentHome = body.PersistentHome ?? true,
            IdleTimeout = Duration.TryParse(body.IdleTimeout, out var idle) ? idle : TimeSpan.FromMinutes(30),
            MaxDuration = Duration.TryParse(body.MaxDuration, out var max) ? max : (TimeSpan?)null,
            // Left out of a replace, a clipboard direction keeps its stored value: an older client or script that edits a
            // template must not silently open a direction an admin closed. Left out of a create, the column's default.
            body.ClipboardToBrowser,
            body.ClipboardToSession,
            body.Sharing,
            body.Audio,
            body.Record,
        };
        var sql = replace
            ? """
              UPDATE templates SET display_name = @DisplayName, description = @Description, category = @Category, icon = @Icon,
                  image = @Image, command = @Command, vnc_port = @VncPort, cpu = @Cpu, memory = @Memory, env = @Env::jsonb,
                  persistent_home = @PersistentHome, idle_timeout = @IdleTimeout, max_duration = @MaxDuration,
                  clipboard_to_browser = COALESCE(@ClipboardToBrowser, clipboard_to_browser),
                  clipboard_to_session = COALESCE(@ClipboardToSession, clipboard_to_session),
                  sharing = COALESCE(@Sharing, sharing), audio = COALESCE(@Audio, audio), record = COALESCE(@Record, record), updated_at = now()
              WHERE name = @Name
              """
            : """
              INSERT INTO templates (name, display_name, description, category, icon, image, command, vnc_port, cpu, memory, env,
                  persistent_home, idle_timeout, max_duration, clipboard_to_browser, clipboard_to_session, sharing, audio, record)
              VALUES (@Name, @DisplayName, @Description, @Category, @Icon, @Image, @Command, @VncPort, @Cpu, @Memory, @Env::jsonb,
                  @PersistentHome, @IdleTimeout, @MaxDuration, COALESCE(@ClipboardToBrowser, true), COALESCE(@ClipboardToSession, true),
                  COALESCE(@Sharing, true), COALESCE(@Audio, true), COALESCE(@Record, false))
              ON CONFLICT (name) DO NOTHING
              """;

        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        if (await connection.ExecuteAsync(new CommandDefinition(sql, row, transaction, cancellationToken: cancellationToken)) == 0)
        {
            return false;
        }

        await connection.WriteAsync(actor, replace ? "template.updated" : "template.created", "template", body.Name, transaction: transaction, cancellationToken: cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return true;
    }

    public async Task<bool> DeleteAsync(Actor actor, string name, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        if (await connection.ExecuteAsync(new CommandDefinition("DELETE FROM templates WHERE name = @name", new { name }, transaction, cancellationToken: cancellationToken)) == 0)
        {
            return false;
        }

        await connection.WriteAsync(actor, "template.deleted", "template", name, transaction: transaction, cancellationToken: cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return true;
    }

    public async Task<bool> AnyAsync(CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return await connection.ExecuteScalarAsync<bool>(new CommandDefinition("SELECT EXISTS (SELECT 1 FROM templates)", cancellationToken: cancellationToken));
    }
}
