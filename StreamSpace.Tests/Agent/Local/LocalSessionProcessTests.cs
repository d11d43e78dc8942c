using System.Diagnostics;
using StreamSpace.Agent.Platforms.Local;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Agent.Local;

public sealed class LocalSessionProcessTests
{
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
