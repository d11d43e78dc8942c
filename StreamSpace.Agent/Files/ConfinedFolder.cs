using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using StreamSpace.Agent.Platforms.Local;

namespace StreamSpace.Agent.Files;

/// <summary>A file operation refused for a reason the user can act on; <see cref="Status"/> is the HTTP status the API answers.</summary>
public sealed class FileRefusedException(int status, string message) : Exception(message)
{
    public int Status { get; } = status;
}

/// <summary>One regular file of a folder, as listed.</summary>
public sealed record FolderEntry(string Name, long Size, DateTimeOffset Modified);

/// <summary>
/// A folder of a session's home (~/Uploads or ~/Downloads), held open by descriptor so every later step works inside
/// that very folder. The agent does the opens itself, as root, and gives what it creates to the session's account
/// while the file is still empty (fchown on the open descriptor). That is as safe as running the operation as the
/// account because each step the account could otherwise subvert is closed by construction:
/// the home is reached by a path whose every folder above it the agent owns, so it cannot be swapped;
/// the folder is opened with O_NOFOLLOW|O_DIRECTORY relative to the home, so a symlink in its place is refused;
/// files are opened relative to that descriptor with O_NOFOLLOW (no symlink as the last component, and names never hold
/// '/', so there is no other component); a new file is O_CREAT|O_EXCL, so nothing existing is ever written;
/// a file read must be a regular file owned by the account, so a hard link to a file the account could not read
/// (say /etc/shadow) is refused, as are FIFOs and devices (opened O_NONBLOCK, so even their open does not block);
/// and the final rename is renameat2 with RENAME_NOREPLACE inside the same descriptor, so it replaces nothing.
/// Run as the account itself (the file service in a Kubernetes session pod, uid 1000 with no capabilities), what it
/// creates is the account's already and no fchown is made: the same rules hold without any privilege.
/// </summary>
public sealed class ConfinedFolder : IDisposable
{
    private readonly SafeFileHandle folder;

    private ConfinedFolder(SafeFileHandle folder, string name, SessionAccount owner)
    {
        this.folder = folder;
        Name = name;
        Owner = owner;
    }

    /// <summary>The folder's name in the home, for messages (~/Uploads).</summary>
    public string Name { get; }

    public SessionAccount Owner { get; }

    /// <summary>
    /// Opens <paramref name="folderName"/> in <paramref name="home"/>; when it is missing it is created (mode 0700, the
    /// account's) if <paramref name="create"/>, else null.
    /// </summary>
    public static ConfinedFolder? Open(string home, string folderName, SessionAccount owner, bool create)
    {
        using var homeHandle = Check(Native.open(home, Flags.Directory | Flags.NoFollow | Flags.CloseOnExec | Flags.PathOnly, 0), $"the session's home");
        var display = "~/" + folderName;
        var fd = Native.openat(homeHandle, folderName, Flags.Directory | Flags.NoFollow | Flags.CloseOnExec, 0);
        if (fd < 0 && Marshal.GetLastPInvokeError() == Errno.NoEntry)
        {
            if (!create)
            {
                return null;
            }

            if (Native.mkdirat(homeHandle, folderName, 0x1C0) != 0 && Marshal.GetLastPInvokeError() != Errno.Exists)
            {
                throw new IOException($"could not create {display}: errno {Marshal.GetLastPInvokeError()}");
            }

            fd = Native.openat(homeHandle, folderName, Flags.Directory | Flags.NoFollow | Flags.CloseOnExec, 0);
            if (fd >= 0 && !RunsAs(owner) && Native.fchown(fd, owner.Uid, owner.Gid) != 0)
            {
                Native.close(fd);
                throw new IOException($"could not give {display} to {owner.Name}: errno {Marshal.GetLastPInvokeError()}");
            }
        }

        if (fd < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw errno is Errno.Loop or Errno.NotDirectory
                ? new FileRefusedException(409, $"{display} is not a folder (a symbolic link is not followed); make it a plain folder.")
                : new IOException($"could not open {display}: errno {errno}");
        }

        return new ConfinedFolder(new SafeFileHandle(fd, ownsHandle: true), display, owner);
    }

    /// <summary>Creates a new, empty file of the account's, mode 0600; refused if anything exists under the name.</summary>
    public FileStream CreateNew(string name)
    {
        var fd = Native.openat(folder, name, Flags.WriteOnly | Flags.Create | Flags.Exclusive | Flags.NoFollow | Flags.CloseOnExec, 0x180);
        if (fd < 0)
        {
            throw new IOException($"could not create {name} in {Name}: errno {Marshal.GetLastPInvokeError()}");
        }

        var handle = new SafeFileHandle(fd, ownsHandle: true);
        if (!RunsAs(Owner) && Native.fchown(handle, Owner.Uid, Owner.Gid) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            handle.Dispose();
            Delete(name);
            throw new IOException($"could not give {name} to {Owner.Name}: errno {errno}");
        }

        return new FileStream(handle, FileAccess.Write, bufferSize: 0);
    }

    /// <summary>Opens a regular file of the account's for reading; refused for a symlink, a special file or another account's file.</summary>
    public (FileStream File, long Size) OpenRead(string name)
    {
        var fd = Native.openat(folder, name, Flags.NoFollow | Flags.NonBlocking | Flags.CloseOnExec, 0);
        if (fd < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw errno switch
            {
                Errno.NoEntry => new FileRefusedException(404, $"There is no {name} in {Name}."),
                Errno.Loop => new FileRefusedException(403, $"{name} in {Name} is a symbolic link; links are not followed out of the folder."),
                _ => new IOException($"could not open {name} in {Name}: errno {errno}"),
            };
        }

        var handle = new SafeFileHandle(fd, ownsHandle: true);
        var status = Stat(handle, "", Native.AtEmptyPath);
        if (status is not { } file || !file.IsRegular || file.Uid != Owner.Uid)
        {
            handle.Dispose();
            throw new FileRefusedException(403, $"{name} in {Name} is not a regular file of the session's account.");
        }

        return (new FileStream(handle, FileAccess.Read, bufferSize: 0), file.Size);
    }

    /// <summary>
    /// Gives <paramref name="temporary"/> its final name: <paramref name="name"/>, or "name (1).ext", "name (2).ext", …
    /// when that is taken. Returns the name it got.
    /// </summary>
    public string Publish(string temporary, string name)
    {
        for (var attempt = 0; attempt < 1000; attempt++)
        {
            var candidate = attempt == 0 ? name : WithSuffix(name, attempt);
            if (Native.renameat2(folder, temporary, folder, candidate, Native.RenameNoReplace) == 0)
            {
                return candidate;
            }

            var errno = Marshal.GetLastPInvokeError();
            if (errno != Errno.Exists)
            {
                throw new IOException($"could not name the upload {candidate} in {Name}: errno {errno}");
            }
        }

        throw new FileRefusedException(409, $"{Name} already holds {name} and 999 numbered copies of it.");
    }

    public void Delete(string name) => Native.unlinkat(folder, name, 0);

    /// <summary>The account's regular files directly in the folder (not symlinks, folders, special files or others' files: none of them downloads), by name.</summary>
    public IReadOnlyList<FolderEntry> List()
    {
        var entries = new List<FolderEntry>();
        // The descriptor's /proc link names this very folder, whatever happened to its path since.
        foreach (var path in Directory.EnumerateFileSystemEntries($"/proc/self/fd/{folder.DangerousGetHandle()}"))
        {
            var name = Path.GetFileName(path);
            if (Stat(folder, name, Native.AtSymlinkNoFollow) is { IsRegular: true } file && file.Uid == Owner.Uid)
            {
                entries.Add(new FolderEntry(name, file.Size, file.Modified));
            }
        }

        entries.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
        return entries;
    }

    public void Dispose() => folder.Dispose();

    /// <summary>"report.pdf" → "report (2).pdf"; a name with no extension, or only a leading dot, gets it at the end.</summary>
    public static string WithSuffix(string name, int number)
    {
        var dot = name.LastIndexOf('.');
        return dot > 0 ? $"{name[..dot]} ({number}){name[dot..]}" : $"{name} ({number})";
    }

    /// <summary>True when this process is the account: what it creates is the account's, with nothing to give.</summary>
    private static bool RunsAs(SessionAccount owner) => UnixFiles.EffectiveUid() == owner.Uid && UnixFiles.EffectiveGid() == owner.Gid;

    private readonly record struct FileStatus(bool IsRegular, int Uid, long Size, DateTimeOffset Modified);

    /// <summary>statx(2): its layout is the same on every architecture, unlike struct stat.</summary>
    private static FileStatus? Stat(SafeFileHandle directory, string name, int flags)
    {
        Span<byte> buffer = stackalloc byte[256];
        if (Native.statx(directory, name, flags, 0x7FF, ref MemoryMarshal.GetReference(buffer)) != 0)
        {
            return null;
        }

        var mode = BinaryPrimitives.ReadUInt16LittleEndian(buffer[28..]);
        var uid = BinaryPrimitives.ReadInt32LittleEndian(buffer[20..]);
        var size = BinaryPrimitives.ReadInt64LittleEndian(buffer[40..]);
        var modified = BinaryPrimitives.ReadInt64LittleEndian(buffer[112..]);
        return new FileStatus((mode & 0xF000) == 0x8000, uid, size, DateTimeOffset.FromUnixTimeSeconds(modified));
    }

    private static SafeFileHandle Check(int fd, string what)
    {
        if (fd < 0)
        {
            throw new IOException($"could not open {what}: errno {Marshal.GetLastPInvokeError()}");
        }

        return new SafeFileHandle(fd, ownsHandle: true);
    }

    private static class Errno
    {
        public const int NoEntry = 2;
        public const int Exists = 17;
        public const int NotDirectory = 20;
        public const int Loop = 40;
    }

    /// <summary>open(2) flags; O_DIRECTORY and O_NOFOLLOW differ on arm64.</summary>
    private static class Flags
    {
        private static readonly bool Arm = RuntimeInformation.ProcessArchitecture == Architecture.Arm64;
        public const int WriteOnly = 0x1;
        public const int Create = 0x40;
        public const int Exclusive = 0x80;
        public const int NonBlocking = 0x800;
        public const int CloseOnExec = 0x80000;
        public const int PathOnly = 0x200000;
        public static readonly int Directory = Arm ? 0x4000 : 0x10000;
        public static readonly int NoFollow = Arm ? 0x8000 : 0x20000;
    }

    private static class Native
    {
        public const int AtSymlinkNoFollow = 0x100;
        public const int AtEmptyPath = 0x1000;
        public const uint RenameNoReplace = 1;

        [DllImport("libc.so.6", SetLastError = true)]
        public static extern int open(string path, int flags, int mode);

        [DllImport("libc.so.6", SetLastError = true)]
        public static extern int openat(SafeFileHandle directory, string name, int flags, int mode);

        [DllImport("libc.so.6", SetLastError = true)]
        public static extern int mkdirat(SafeFileHandle directory, string name, int mode);

        [DllImport("libc.so.6", SetLastError = true)]
        public static extern int fchown(SafeFileHandle file, int owner, int group);

        [DllImport("libc.so.6", SetLastError = true)]
        public static extern int fchown(int file, int owner, int group);

        [DllImport("libc.so.6", SetLastError = true)]
        public static extern int close(int file);

        [DllImport("libc.so.6", SetLastError = true)]
        public static extern int renameat2(SafeFileHandle fromDirectory, string from, SafeFileHandle toDirectory, string to, uint flags);

        [DllImport("libc.so.6", SetLastError = true)]
        public static extern int unlinkat(SafeFileHandle directory, string name, int flags);

        [DllImport("libc.so.6", SetLastError = true)]
        public static extern int statx(SafeFileHandle directory, string name, int flags, uint mask, ref byte buffer);
    }
}
