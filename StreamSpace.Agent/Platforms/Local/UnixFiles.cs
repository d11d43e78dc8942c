using System.Runtime.InteropServices;

namespace StreamSpace.Agent.Platforms.Local;

/// <summary>
/// Creates the local platform's folders and files with their owner and mode set before anything is written, so no
/// other account can open them in between.
/// </summary>
public static class UnixFiles
{
    public const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    public const UnixFileMode OwnerReadWrite = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    /// <summary>rwx--x--x: others may pass through to a folder inside whose name they know, but not list it.</summary>
    public const UnixFileMode PassThrough = OwnerOnly | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;

    [DllImport("libc.so.6", EntryPoint = "chown", SetLastError = true)]
    private static extern int NativeChown(string path, int owner, int group);

    [DllImport("libc.so.6", EntryPoint = "geteuid")]
    public static extern int EffectiveUid();

    [DllImport("libc.so.6", EntryPoint = "getegid")]
    public static extern int EffectiveGid();

    public static void Chown(string path, SessionAccount owner)
    {
        if (NativeChown(path, owner.Uid, owner.Gid) != 0)
        {
            throw new IOException($"could not give {path} to {owner.Name} ({owner.Uid}:{owner.Gid}): errno {Marshal.GetLastPInvokeError()}");
        }
    }

    /// <summary>Creates the folder if needed, then sets its mode and owner whether it was new or not.</summary>
    public static void CreateDirectory(string path, UnixFileMode mode, SessionAccount? owner = null)
    {
        Directory.CreateDirectory(path, mode);
        File.SetUnixFileMode(path, mode);
        if (owner is not null)
        {
            Chown(path, owner);
        }
    }

    /// <summary>Writes a new file that is created with <paramref name="mode"/> and given to <paramref name="owner"/> while still empty.</summary>
    public static async Task WriteAsync(string path, ReadOnlyMemory<byte> content, UnixFileMode mode, SessionAccount? owner, CancellationToken cancellationToken)
    {
        File.Delete(path);
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = mode };
        await using var file = new FileStream(path, options);
        if (owner is not null)
        {
            Chown(path, owner);
        }

        await file.WriteAsync(content, cancellationToken);
    }

    /// <summary>The first existing folder above <paramref name="path"/> that other accounts cannot pass through, if any.</summary>
    public static string? FirstClosedParent(string path)
    {
        for (var parent = Path.GetDirectoryName(Path.GetFullPath(path)); parent is not null; parent = Path.GetDirectoryName(parent))
        {
            if (Directory.Exists(parent) && !File.GetUnixFileMode(parent).HasFlag(UnixFileMode.OtherExecute))
            {
                return parent;
            }
        }

        return null;
    }
}
