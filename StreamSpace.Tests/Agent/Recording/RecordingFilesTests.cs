using StreamSpace.Agent;
using StreamSpace.Agent.Recording;
using StreamSpace.Settings;
using StreamSpace.Tests.Infrastructure;

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
    public void An_export_left_half_written_by_an_agent_that_stopped_is_deleted_when_the_next_one_starts()
    {
        var data = Directory.CreateTempSubdirectory("streamspace-recordings-").FullName;
        try
        {
            var first = new RecordingFiles(new AgentSettings { DataDirectory = data });
            var stale = first.TemporaryPath(".mp4");
            File.WriteAllBytes(stale, [1, 2, 3]);
            var recording = first.PathOf(Guid.NewGuid());
            File.WriteAllBytes(recording, [4, 5, 6]);

            _ = new RecordingFiles(new AgentSettings { DataDirectory = data });
            Assert.False(File.Exists(stale));
            Assert.True(File.Exists(recording));
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

    [Fact]
    public async Task A_non_root_agent_starts_on_a_recordings_volume_whose_root_it_does_not_own_and_leaves_the_folder_as_it_was()
    {
        // As a PVC's mount root: root's, group the pod's fsGroup (the agent's gid) with write and setgid.
        const int AgentUid = 1654;
        var volume = Directory.CreateTempSubdirectory("streamspace-recordings-volume-").FullName;
        const UnixFileMode VolumeMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
            | UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute | UnixFileMode.SetGroup;
        await ProcessRunner.RunCheckedAsync("chown", $"0:{AgentUid}", volume);
        File.SetUnixFileMode(volume, VolumeMode);
        try
        {
            await using var agent = AgentProcess.Start(new Uri("ws://127.0.0.1:9/agent/ws"), "volume-agent", "unused-key",
                new Dictionary<string, string> { ["RECORDINGS_DIR"] = volume }, uid: AgentUid);
            await Eventually.TrueAsync(() => Task.FromResult(agent.Log.Contains("Agent started", StringComparison.Ordinal) || agent.HasExited),
                TimeSpan.FromSeconds(30), "the agent to start or stop");
            Assert.False(agent.HasExited, agent.Log);
            Assert.Equal(VolumeMode, File.GetUnixFileMode(volume));
            Assert.Empty(Directory.GetFileSystemEntries(volume, ".write-check-*"));
        }
        finally
        {
            Directory.Delete(volume, recursive: true);
        }
    }
}
