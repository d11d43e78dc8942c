using System.Diagnostics;
using StreamSpace.Agent.Platforms.Local;

namespace StreamSpace.Tests.Agent.Local;

public sealed class LocalSessionProcessTests
{
    [Theory]
    [InlineData("0a1b2c3d")]
    [InlineData("ffffffff")]
    [InlineData("short")]
    public async Task The_password_file_holds_what_vncpasswd_writes_so_xvnc_accepts_the_password(string password)
    {
        var vncpasswd = Process.Start(new ProcessStartInfo("vncpasswd", ["-f"]) { RedirectStandardInput = true, RedirectStandardOutput = true })!;
        await vncpasswd.StandardInput.WriteLineAsync(password);
        vncpasswd.StandardInput.Close();
        using var expected = new MemoryStream();
        await vncpasswd.StandardOutput.BaseStream.CopyToAsync(expected);
        await vncpasswd.WaitForExitAsync();

        Assert.Equal(expected.ToArray(), LocalSessionProcess.ObfuscatedPassword(password));
    }

    [Fact]
    public async Task The_password_files_are_readable_by_the_agent_only()
    {
        var directory = Directory.CreateTempSubdirectory("streamspace-password-").FullName;
        try
        {
            var password = await LocalSessionProcess.CreatePasswordFileAsync(directory, CancellationToken.None);
            Assert.Equal(password, await File.ReadAllTextAsync(Path.Combine(directory, "password")));
            Assert.Equal(LocalSessionProcess.ObfuscatedPassword(password), await File.ReadAllBytesAsync(Path.Combine(directory, "vncpasswd")));
            foreach (var file in new[] { "password", "vncpasswd" })
            {
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(directory, file)));
            }
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }
}
