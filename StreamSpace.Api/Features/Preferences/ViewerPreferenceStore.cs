using Dapper;
using Npgsql;

namespace StreamSpace.Api.Features.Preferences;

/// <summary>The <c>viewer_preferences</c> table: one row per user who changed a default.</summary>
public sealed class ViewerPreferenceStore(NpgsqlDataSource dataSource)
{
    public static readonly ViewerPreferences Defaults = new(ScaleViewport: false);

    public async Task<ViewerPreferences> GetAsync(Guid userId, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        var scale = await connection.QuerySingleOrDefaultAsync<bool?>(new CommandDefinition(
            "SELECT scale_viewport FROM viewer_preferences WHERE user_id = @userId", new { userId }, cancellationToken: cancellationToken));
        return scale is { } value ? new(value) : Defaults;
    }

    public async Task SaveAsync(Guid userId, ViewerPreferences preferences, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition("""
            INSERT INTO viewer_preferences (user_id, scale_viewport) VALUES (@userId, @ScaleViewport)
            ON CONFLICT (user_id) DO UPDATE SET scale_viewport = excluded.scale_viewport, updated_at = now()
            """, new { userId, preferences.ScaleViewport }, cancellationToken: cancellationToken));
    }
}
