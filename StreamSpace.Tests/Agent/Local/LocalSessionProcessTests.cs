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

    [Fact]
    public void A_session_with_sound_names_its_own_sound_server_and_one_without_names_none_even_when_the_template_sets_one()
    {
        var record = new LocalSessionRecord
        {
            SessionId = "sound", Username = "alice", Template = "t", Home = "/home/alice", Directory = "/var/lib/agent/sessions/sound",
            State = StreamSpace.Contracts.SessionState.Running, Display = 42, Audio = true,
        };
        var account = new SessionAccount("ss-alice", 2000, 2000);
        var templateEnv = new Dictionary<string, string> { ["PULSE_SERVER"] = "tcp:elsewhere", ["EDITOR"] = "vi" };

        var withSound = LocalSessionProcess.SessionEnvironment(record, account, templateEnv);
        Assert.Equal("unix:/var/lib/agent/sessions/sound/run/pulse/native", withSound["PULSE_SERVER"]);
        Assert.Equal("60", withSound["PULSE_LATENCY_MSEC"]);
        Assert.Equal("vi", withSound["EDITOR"]);

        var silent = LocalSessionProcess.SessionEnvironment(record with { Audio = false }, account, templateEnv);
        Assert.False(silent.ContainsKey("PULSE_SERVER"));
        Assert.False(silent.ContainsKey("PULSE_LATENCY_MSEC"));
    }
}
