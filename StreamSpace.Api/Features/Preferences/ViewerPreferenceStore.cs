using Dapper;
using Npgsql;

namespace StreamSpace.Api.Features.Preferences;

/// <summary>The <c>viewer_preferences</c> table: one row per user who changed a default.</summary>
public sealed class ViewerPreferenceStore(NpgsqlDataSource dataSource)
{
    public static readonly ViewerPreferences Defaults = new(ScaleViewport: false, AudioMuted: false);

    private sealed record Row(bool ScaleViewport, bool AudioMuted);

    public async Task<ViewerPreferences> GetAsync(Guid userId, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        var row = await connection.QuerySingleOrDefaultAsync<Row>(new CommandDefinition(
            "SELECT scale_viewport, audio_muted FROM viewer_preferences WHERE user_id = @userId", new { userId }, cancellationToken: cancellationToken));
        return row is null ? Defaults : new(row.ScaleViewport, row.AudioMuted);
    }

    /// <summary>Saves the preferences; one left out (null) keeps its stored value, or its default. Returns what is stored now.</summary>
    public async Task<ViewerPreferences> SaveAsync(Guid userId, ViewerPreferences preferences, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        var row = await connection.QuerySingleAsync<Row>(new CommandDefinition("""
            INSERT INTO viewer_preferences (user_id, scale_viewport, audio_muted) VALUES (@userId, @ScaleViewport, COALESCE(@AudioMuted, false))
            ON CONFLICT (user_id) DO UPDATE SET scale_viewport = excluded.scale_viewport,
                audio_muted = COALESCE(@AudioMuted, viewer_preferences.audio_muted), updated_at = now()
            RETURNING scale_viewport, audio_muted
            """, new { userId, preferences.ScaleViewport, preferences.AudioMuted }, cancellationToken: cancellationToken));
        return new(row.ScaleViewport, row.AudioMuted);
    }
}
