using StreamSpace.Agent.Files;
using StreamSpace.Agent.Platforms.Local;
using StreamSpace.Contracts.Tunnel;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Agent.Files;

/// <summary>The agent's confined file operations on real folders: what they create, refuse and never follow.</summary>
public sealed class ConfinedFolderTests : IDisposable
{
    private readonly string home = Directory.CreateTempSubdirectory("streamspace-home-").FullName;

    // As root (CI) the files go to nobody, so ownership is really changed and checked; otherwise to this account.
    private static readonly SessionAccount Owner = Environment.IsPrivilegedProcess
        ? new SessionAccount("nobody", 65534, 65534)
        : new SessionAccount(Environment.UserName, UnixFiles.EffectiveUid(), UnixFiles.EffectiveGid());

    [Theory]
    [InlineData("", "empty")]
    [InlineData(".", "not a file name")]
    [InlineData("..", "not a file name")]
    [InlineData("../x", "/")]
    [InlineData("a\\b", "/")]
    [InlineData("a\nb", "control")]
    [InlineData("a\0b", "control")]
    public void Names_that_are_not_one_file_in_the_folder_are_refused_with_a_reason(string name, string reason) =>
        Assert.Contains(reason, FileStreams.NameProblem(name));

    [Fact]
    public void Names_up_to_255_bytes_are_accepted_and_longer_ones_refused()
    {
        Assert.Null(FileStreams.NameProblem("report final (2).pdf"));
        Assert.Null(FileStreams.NameProblem(new string('é', 127)));
        Assert.Contains("255", FileStreams.NameProblem(new string('é', 128)));
    }

    [Theory]
    [InlineData("report.pdf", 1, "report (1).pdf")]
    [InlineData("archive.tar.gz", 2, "archive.tar (2).gz")]
    [InlineData("notes", 3, "notes (3)")]
    [InlineData(".bashrc", 1, ".bashrc (1)")]
    public void A_taken_name_gets_a_numbered_suffix_before_its_extension(string name, int number, string expected) =>
        Assert.Equal(expected, ConfinedFolder.WithSuffix(name, number));

    [Fact]
    public async Task Uploads_is_created_0700_for_the_account_and_a_published_file_never_replaces_one()
    {
        using (var folder = ConfinedFolder.Open(home, "Uploads", Owner, create: true)!)
        {
            foreach (var content in new[] { "first", "second" })
            {
                await using (var file = folder.CreateNew("part"))
                {
                    await file.WriteAsync(System.Text.Encoding.UTF8.GetBytes(content));
                }

                folder.Publish("part", "a.txt");
            }
        }

        var uploads = Path.Combine(home, "Uploads");
        Assert.Equal(UnixFiles.OwnerOnly, File.GetUnixFileMode(uploads));
        Assert.Equal(Owner.Uid.ToString(System.Globalization.CultureInfo.InvariantCulture), (await ProcessRunner.RunCheckedAsync("stat", "-c", "%u", uploads)).Trim());
        Assert.Equal(Owner.Uid.ToString(System.Globalization.CultureInfo.InvariantCulture), (await ProcessRunner.RunCheckedAsync("stat", "-c", "%u", Path.Combine(uploads, "a.txt"))).Trim());
        Assert.Equal("first", await File.ReadAllTextAsync(Path.Combine(uploads, "a.txt")));
        Assert.Equal("second", await File.ReadAllTextAsync(Path.Combine(uploads, "a (1).txt")));
        Assert.False(File.Exists(Path.Combine(uploads, "part")));
    }

    [Fact]
    public async Task A_symlinked_folder_a_symlinked_file_a_FIFO_and_another_accounts_file_are_refused()
    {
        Directory.CreateSymbolicLink(Path.Combine(home, "Uploads"), Path.GetTempPath());
        var refused = Assert.Throws<FileRefusedException>(() => ConfinedFolder.Open(home, "Uploads", Owner, create: true));
        Assert.Equal(409, refused.Status);

        var downloads = Directory.CreateDirectory(Path.Combine(home, "Downloads")).FullName;
        File.CreateSymbolicLink(Path.Combine(downloads, "passwd"), "/etc/passwd");
        await ProcessRunner.RunCheckedAsync("mkfifo", Path.Combine(downloads, "pipe"));
        await File.WriteAllTextAsync(Path.Combine(downloads, "plain.txt"), "x");
        using var folder = ConfinedFolder.Open(home, "Downloads", Owner, create: false)!;

        Assert.Equal(403, Assert.Throws<FileRefusedException>(() => folder.OpenRead("passwd")).Status);
        // Opened without blocking, then refused as no regular file.
        Assert.Equal(403, Assert.Throws<FileRefusedException>(() => folder.OpenRead("pipe")).Status);
        Assert.Equal(404, Assert.Throws<FileRefusedException>(() => folder.OpenRead("missing")).Status);
        if (!Environment.IsPrivilegedProcess)
        {
            Assert.Equal(["plain.txt"], folder.List().Select(f => f.Name));
        }

        if (Environment.IsPrivilegedProcess)
        {
            // plain.txt is root's, not the account's: the agent reads as root, so it must not hand it out.
            Assert.Equal(403, Assert.Throws<FileRefusedException>(() => folder.OpenRead("plain.txt")).Status);
            Assert.Empty(folder.List());
        }
    }

    public void Dispose() => Directory.Delete(home, recursive: true);
}
