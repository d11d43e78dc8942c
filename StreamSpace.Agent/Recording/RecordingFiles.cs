using StreamSpace.Settings;

namespace StreamSpace.Agent.Recording;

/// <summary>
/// The folder of recordings, <c>&lt;id&gt;.rfb</c> each: the agent's alone (0700 when it owns the folder, files 0600
/// always), never in a session's home, so no session account can read or alter what was recorded of it.
/// </summary>
public sealed class RecordingFiles(AgentSettings settings)
{
    public const string Extension = ".rfb";

    private const string ExportPrefix = ".export-";

    private const UnixFileMode AgentOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    public string Directory { get; } = Prepare(settings.RecordingsPath);

    /// <summary>Creates the folder (the agent's own) or checks a volume's, and clears what a stopped agent left behind.</summary>
    private static string Prepare(string directory)
    {
        try
        {
            System.IO.Directory.CreateDirectory(directory, AgentOnly);
            SecureOrCheckWritable(directory);
            DeleteStaleExports(directory);
            return directory;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidSettingException("RECORDINGS_DIR",
                $"is {directory} (empty: <AGENT_DATA_DIR>/recordings), which the agent cannot create or write: {e.Message}. Choose a folder the agent can write, e.g. a volume mounted for recordings.");
        }
    }

    /// <summary>
    /// Makes a folder of the agent's own 0700. A folder it does not own (a volume's mount root: root's, group the pod's
    /// fsGroup) refuses the chmod; there the agent only checks it can write, and its files are 0600 all the same.
    /// </summary>
    private static void SecureOrCheckWritable(string directory)
    {
        try
        {
            File.SetUnixFileMode(directory, AgentOnly);
        }
        catch (UnauthorizedAccessException)
        {
            var probe = Path.Combine(directory, $".write-check-{Guid.NewGuid():N}");
            using (new FileStream(probe, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite }))
            {
            }

            File.Delete(probe);
        }
    }

    /// <summary>An export's temporary file left by an agent that stopped mid-export: nothing will read or delete it but this.</summary>
    private static void DeleteStaleExports(string directory)
    {
        foreach (var stale in System.IO.Directory.EnumerateFiles(directory, ExportPrefix + "*"))
        {
            File.Delete(stale);
        }
    }

    /// <summary>The file of a recording. Takes a Guid, never a name, so no caller can point it outside the folder.</summary>
    public string PathOf(Guid recordingId) => Path.Combine(Directory, recordingId.ToString("D") + Extension);

    /// <summary>A new file for a recording, readable and writable by the agent alone; fails if it exists.</summary>
    public FileStream Create(Guid recordingId) => new(PathOf(recordingId), new FileStreamOptions
    {
        Mode = FileMode.CreateNew,
        Access = FileAccess.Write,
        Share = FileShare.Read | FileShare.Delete,
        // Unbuffered: every record is one write of header and bytes, so a reader (a download while it records) or a
        // crash never sees half a record held back in a buffer.
        BufferSize = 0,
        UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
    });

    /// <summary>A temporary file beside the recordings (an export's MP4), the agent's alone.</summary>
    public string TemporaryPath(string extension) => Path.Combine(Directory, $"{ExportPrefix}{Guid.NewGuid():N}{extension}");

    /// <summary>Deletes a recording's file; one that is gone is no error.</summary>
    public bool Delete(Guid recordingId)
    {
        var path = PathOf(recordingId);
        if (!File.Exists(path))
        {
            return false;
        }

        File.Delete(path);
        return true;
    }
}
