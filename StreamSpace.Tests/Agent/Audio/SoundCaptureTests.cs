using Microsoft.Extensions.Logging.Abstractions;
using StreamSpace.Agent.Audio;
using StreamSpace.Agent.Platforms;
using StreamSpace.Agent.Platforms.Local;
using StreamSpace.Contracts.Tunnel;

namespace StreamSpace.Tests.Agent.Audio;

public sealed class SoundCaptureTests
{
    [Fact]
    public async Task A_machine_without_the_capture_program_answers_503_naming_it_instead_of_opening_a_stream_that_cuts_off()
    {
        var capture = new SoundCapture(NullLogger.Instance, "parec-not-installed");
        var sound = new SessionSound("no-parec", Path.Combine(Path.GetTempPath(), "no-such-sound-socket"), new SessionAccount("nobody", 65534, 65534), DropPrivileges: false);
        using var data = new MemoryStream();

        await capture.ServeAsync(sound, data, CancellationToken.None);

        data.Position = 0;
        var reply = await FileStreams.ReadReplyAsync(data, CancellationToken.None);
        Assert.Equal(503, reply.Status);
        Assert.Contains("parec-not-installed", reply.Error);
        Assert.Equal(data.Length, data.Position);
    }
}
