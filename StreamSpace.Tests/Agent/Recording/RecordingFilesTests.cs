using StreamSpace.Agent;
using StreamSpace.Agent.Recording;
using StreamSpace.Settings;

namespace StreamSpace.Tests.Agent.Recording;

public sealed class RecordingFilesTests
{
    [Fact]
    public void The_recordings_folder_is_the_agents_alone_under_its_data_directory_unless_RECORDINGS_DIR_says_otherwise()
    {
        var data = Directory.CreateTempSubdirectory("streamspace-recordings-").FullName;
        try
        {
            var files = new RecordingFiles(new AgentSettings { DataDirectory = data });
            Assert.Equal(Path.Combine(data, "recordings"), files.Directory);
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(files.Directory));

            var elsewhere = Path.Combine(data, "volume");
            Assert.Equal(elsewhere, new RecordingFiles(new AgentSettings { DataDirectory = data, RecordingsDirectory = elsewhere }).Directory);
        }
        finally
        {
            Directory.Delete(data, recursive: true);
        }
    }

    [Fact]
    public void A_recordings_folder_the_agent_cannot_create_stops_it_naming_RECORDINGS_DIR()
    {
        var refused = Assert.Throws<InvalidSettingException>(() => new RecordingFiles(new AgentSettings { RecordingsDirectory = "/proc/streamspace-recordings" }));
        Assert.Contains("RECORDINGS_DIR", refused.Message);
    }
}
