using System.Diagnostics;
using StreamSpace.Agent.Platforms.Local;
using StreamSpace.Tests.Infrastructure;

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
    public void New_passwords_use_all_eight_bytes_and_differ_each_time()
    {
        var passwords = Enumerable.Range(0, 200).Select(_ => LocalSessionProcess.NewPassword()).ToList();
        Assert.All(passwords, password => Assert.Equal(8, password.Length));
        // A zero byte would end the password early in TigerVNC, which reads it as a C string.
        Assert.All(passwords, password => Assert.DoesNotContain((byte)0, password));
        Assert.Equal(passwords.Count, passwords.Select(Convert.ToHexString).Distinct().Count());
        // Hex or ASCII passwords would leave the high bit of every byte unused; these use the whole byte.
        Assert.Contains(passwords.SelectMany(p => p), b => b >= 0x80);
    }

    [Fact]
    public async Task The_x_authority_file_holds_one_cookie_that_xauth_reads()
    {
        var file = Path.Combine(Directory.CreateTempSubdirectory("streamspace-xauth-").FullName, "Xauthority");
        try
        {
            byte[] cookie = [0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff];
            await File.WriteAllBytesAsync(file, LocalSessionProcess.XAuthority(42, cookie));
            var output = await ProcessRunner.RunCheckedAsync("xauth", "-f", file, "list");
            var entry = Assert.Single(output.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.Equal(["#ffff##:42", "MIT-MAGIC-COOKIE-1", "00112233445566778899aabbccddeeff"], entry.Split(' ', StringSplitOptions.RemoveEmptyEntries));
        }
        finally
        {
            Directory.Delete(Path.GetDirectoryName(file)!, recursive: true);
        }
    }
}
