namespace StreamSpace.Api.Features.Recordings;

/// <summary>The recordings' storage as the health report (Diagnostics) shows it.</summary>
public interface IRecordingHealth
{
    /// <summary>The recordings' total size against <c>RECORDING_MAX_TOTAL_BYTES</c>.</summary>
    Task<DiagnosticCheck> StorageAsync(CancellationToken cancellationToken);
}

public sealed class RecordingHealth(RecordingCatalog catalog, ApiSettings settings) : IRecordingHealth
{
    public async Task<DiagnosticCheck> StorageAsync(CancellationToken cancellationToken)
    {
        const string id = "recordings.storage";
        const string title = "Recordings fit within their total size";
        var (bytes, count) = await catalog.TotalAsync(cancellationToken);
        var limit = settings.RecordingMaxTotalBytes;
        var evidence = $"{count} recordings take {Size(bytes)} of RECORDING_MAX_TOTAL_BYTES {Size(limit)} ({100.0 * bytes / limit:0.#}%); " +
            $"finished ones are kept for RECORDING_RETENTION {StreamSpace.Settings.Duration.Format(settings.RecordingRetention)}";
        // Retention trims to the limit every minute; above it for long means the running recordings alone exceed it.
        return bytes > limit
            ? DiagnosticCheck.Warn(id, title, evidence,
                "Retention deletes the oldest finished recordings every minute; running ones alone exceed the limit. Raise RECORDING_MAX_TOTAL_BYTES or record fewer sessions.")
            : DiagnosticCheck.Ok(id, title, evidence);
    }

    private static string Size(long bytes) => bytes switch
    {
        >= 1L << 30 => $"{bytes / (double)(1L << 30):0.##} GiB",
        >= 1L << 20 => $"{bytes / (double)(1L << 20):0.##} MiB",
        >= 1L << 10 => $"{bytes / 1024.0:0.##} KiB",
        _ => $"{bytes} B",
    };
}
