using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using StreamSpace.Agent.Recording;
using StreamSpace.Contracts;
using StreamSpace.Contracts.Tunnel;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Agent.Recording;

/// <summary>
/// The agent's recorder on real Xvnc sessions of the local platform. No control plane: the agent's hub URL leads
/// nowhere, and the tests drive its command executor and recordings as the control plane's messages would.
/// </summary>
public sealed class SessionRecorderTests : IAsyncLifetime
{
    private AgentHost agent = null!;

    public async Task InitializeAsync() =>
        agent = await AgentHost.StartAsync(new Uri("ws://127.0.0.1:9/agent/ws"), "recorder-agent", "unused-key");

    public async Task DisposeAsync() => await agent.DisposeAsync();

    [Fact]
    public async Task A_recorded_xterm_session_yields_a_file_that_shows_the_typed_command_and_exports_to_an_mp4_of_its_length()
    {
        var reports = new ConcurrentQueue<RecordingMessage>();
        agent.Recordings.Reported += reports.Enqueue;
        var sessionId = "rec-" + Guid.NewGuid().ToString("N")[..8];
        var wall = Stopwatch.StartNew();
        await RunCommandAsync(CommandTypes.StartSession, sessionId, record: true);
        var recorder = await RecorderOfAsync(sessionId);
        var recordingSince = wall.Elapsed;

        await FocusXtermAsync(sessionId);
        var typedAtMs = recorder.DurationMs;
        var bytesBeforeTyping = recorder.Bytes;
        var typed = await ProcessRunner.RunAsync("xdotool", ["type", "--delay", "20", "echo recorded-by-streamspace\n"], XEnvironment(sessionId), TimeSpan.FromSeconds(20));
        Assert.True(typed.ExitCode == 0, typed.StandardError);
        // The typed text reaches the recording as updates: the file grows.
        await Eventually.TrueAsync(() => Task.FromResult(recorder.Bytes > bytesBeforeTyping + 100), TimeSpan.FromSeconds(10), "the typed text to be recorded");
        // Idle time after the typing too: the recording and its export cover it, not just the updates.
        await Eventually.TrueAsync(() => Task.FromResult(recorder.DurationMs >= 3000), TimeSpan.FromSeconds(10), "three seconds of recording");
        var stoppingAt = wall.Elapsed;
        await RunCommandAsync(CommandTypes.StopSession, sessionId, record: true);
        await recorder.Completion;

        // Reported at start (no end) and at the end (with the end), under one id.
        var final = Assert.Single(reports, r => r.EndedAt is not null);
        Assert.Contains(reports, r => r.EndedAt is null && r.RecordingId == final.RecordingId);
        Assert.Equal(recorder.Id, final.RecordingId);
        Assert.Equal(sessionId, final.SessionId);
        Assert.InRange(final.DurationMs, (stoppingAt - recordingSince).TotalMilliseconds - 1000, wall.Elapsed.TotalMilliseconds + 1000);

        var path = agent.Recordings.Files.PathOf(recorder.Id);
        Assert.StartsWith(Path.Combine(agent.DataDirectory, "recordings") + "/", path);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        Assert.Equal(final.Bytes, new FileInfo(path).Length);
        var bytes = await File.ReadAllBytesAsync(path);
        Assert.True(bytes.AsSpan().StartsWith(RecordingFormat.Magic));

        // The screen when the typing began differs from the last: the command and its output appeared.
        using (var decoder = RfbDecoder.Open(path))
        {
            byte[]? beforeTyping = null;
            while (decoder.TryBeginMessage(out var type, out var timeMs))
            {
                if (beforeTyping is null && timeMs >= typedAtMs)
                {
                    beforeTyping = (byte[])decoder.Frame.Clone();
                }

                decoder.ApplyMessage(type);
            }

            Assert.NotNull(beforeTyping);
            Assert.Equal(final.DurationMs, decoder.EndMs);
            Assert.Contains(decoder.Frame, value => value != 0);
            Assert.False(beforeTyping.AsSpan().SequenceEqual(decoder.Frame), "the last frame shows nothing typed");
        }

        // A download is the file itself.
        var service = new RecordingStreamService(agent.Recordings.Files, Microsoft.Extensions.Logging.Abstractions.NullLogger<RecordingStreamService>.Instance);
        var (downloadReply, downloaded) = await ServeAsync(service, RecordingStreams.Download, recorder.Id.ToString("D"));
        Assert.Equal(200, downloadReply.Status);
        Assert.Equal(bytes, downloaded);

        // An export is an H.264 MP4 as long as the recording.
        var (exportReply, video) = await ServeAsync(service, RecordingStreams.Export, recorder.Id.ToString("D"));
        Assert.Equal(200, exportReply.Status);
        Assert.Equal(video.Length, exportReply.Size);
        var mp4 = Path.Combine(Directory.CreateTempSubdirectory("streamspace-export-").FullName, "export.mp4");
        await File.WriteAllBytesAsync(mp4, video);
        var probe = await ProcessRunner.RunCheckedAsync("ffprobe", "-v", "error", "-show_entries", "format=duration:stream=codec_name,width,height", "-of", "default=nw=1", mp4);
        Assert.Contains("codec_name=h264", probe);
        var duration = double.Parse(probe.Split('\n').Single(l => l.StartsWith("duration=", StringComparison.Ordinal))["duration=".Length..], CultureInfo.InvariantCulture);
        Assert.InRange(duration, (final.DurationMs / 1000.0) - 1, (final.DurationMs / 1000.0) + 1);
        Assert.Empty(Directory.GetFiles(agent.Recordings.Files.Directory, ".export-*"));

        // Deleting removes the file; deleting again is no error.
        await agent.Recordings.DeleteAsync(recorder.Id);
        Assert.False(File.Exists(path));
        await agent.Recordings.DeleteAsync(recorder.Id);
        var (goneReply, _) = await ServeAsync(service, RecordingStreams.Download, recorder.Id.ToString("D"));
        Assert.Equal(404, goneReply.Status);
    }

    [Fact]
    public async Task A_desktop_enlarged_while_recorded_is_recorded_whole_and_its_export_keeps_the_first_size()
    {
        var sessionId = "rec-" + Guid.NewGuid().ToString("N")[..8];
        await RunCommandAsync(CommandTypes.StartSession, sessionId, record: true);
        var recorder = await RecorderOfAsync(sessionId);
        await FocusXtermAsync(sessionId);

        // As a viewer with a larger window would: the desktop grows, then the terminal moves into the new part.
        var x = XEnvironment(sessionId);
        var resized = await ProcessRunner.RunAsync("xrandr", ["--fb", "1600x1000"], x, TimeSpan.FromSeconds(20));
        Assert.True(resized.ExitCode == 0, resized.StandardError);
        var moved = await ProcessRunner.RunAsync("xdotool", ["search", "--class", "XTerm", "windowmove", "--sync", "1350", "850"], x, TimeSpan.FromSeconds(20));
        Assert.True(moved.ExitCode == 0, moved.StandardError);
        // The terminal's pixels beyond the first 1280×800 reach the recording (read as it grows: the move's update comes
        // with the recorder's next request, after the resize's own update).
        var path = agent.Recordings.Files.PathOf(recorder.Id);
        await Eventually.TrueAsync(() => Task.FromResult(ShowsTerminalBeyondFirstSize(File.ReadAllBytes(path))), TimeSpan.FromSeconds(10), "the moved terminal to be recorded");
        await RunCommandAsync(CommandTypes.StopSession, sessionId, record: true);
        await recorder.Completion;

        using var decoder = RfbDecoder.Open(path);
        decoder.ApplyAll();
        Assert.Equal((1600, 1000), (decoder.Width, decoder.Height));
        Assert.True(ShowsTerminalBeyondFirstSize(File.ReadAllBytes(path)), "the finished recording shows the terminal beyond the first 1280×800");

        var service = new RecordingStreamService(agent.Recordings.Files, Microsoft.Extensions.Logging.Abstractions.NullLogger<RecordingStreamService>.Instance);
        var (reply, video) = await ServeAsync(service, RecordingStreams.Export, recorder.Id.ToString("D"));
        Assert.Equal(200, reply.Status);
        var mp4 = Path.Combine(Directory.CreateTempSubdirectory("streamspace-export-").FullName, "export.mp4");
        await File.WriteAllBytesAsync(mp4, video);
        var probe = await ProcessRunner.RunCheckedAsync("ffprobe", "-v", "error", "-show_entries", "stream=width,height", "-of", "default=nw=1", mp4);
        Assert.Contains("width=1280", probe);
        Assert.Contains("height=800", probe);
    }

    [Fact]
    public async Task A_record_request_starts_one_recording_for_a_running_session_and_hibernating_it_ends_the_recording()
    {
        var sessionId = "rec-" + Guid.NewGuid().ToString("N")[..8];
        await RunCommandAsync(CommandTypes.StartSession, sessionId, record: false);
        Assert.DoesNotContain(agent.Recordings.Running, r => r.SessionId == sessionId);

        var first = await agent.Recordings.RecordAsync(sessionId);
        var second = await agent.Recordings.RecordAsync(sessionId);
        Assert.NotNull(first);
        Assert.Same(first, second);
        Assert.Single(agent.Recordings.Running, r => r.SessionId == sessionId);

        await RunCommandAsync(CommandTypes.HibernateSession, sessionId, record: false);
        await first.Completion.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Null(first.EndReason); // stopped before the VNC server went away, not cut off by it
        Assert.DoesNotContain(agent.Recordings.Running, r => r.SessionId == sessionId);
        using var decoder = RfbDecoder.Open(agent.Recordings.Files.PathOf(first.Id));
        Assert.Equal(first.DurationMs, decoder.ApplyAll());
    }

    [Fact]
    public async Task The_agent_stopping_ends_the_recording_with_its_end_record_and_the_restarted_agent_records_the_session_on()
    {
        var sessionId = "rec-" + Guid.NewGuid().ToString("N")[..8];
        await RunCommandAsync(CommandTypes.StartSession, sessionId, record: true);
        var before = await RecorderOfAsync(sessionId);
        var file = agent.Recordings.Files.PathOf(before.Id);
        await agent.StopAsync();
        Assert.True(before.Completion.IsCompleted);
        using (var decoder = RfbDecoder.Open(file))
        {
            Assert.Equal(before.DurationMs, decoder.ApplyAll());
        }

        agent = await AgentHost.StartAsync(new Uri("ws://127.0.0.1:9/agent/ws"), "recorder-agent", "unused-key", agent.DataDirectory);
        var after = await RecorderOfAsync(sessionId);
        Assert.NotEqual(before.Id, after.Id);

        // Stopped for good: the next agent does not record it again.
        await RunCommandAsync(CommandTypes.StopSession, sessionId, record: true);
        Assert.DoesNotContain(sessionId, await File.ReadAllTextAsync(Path.Combine(agent.Recordings.Files.Directory, "recorded-sessions.json")));
    }

    [Fact]
    public async Task A_session_without_a_view_only_password_is_not_recorded_and_a_recording_name_must_be_an_id()
    {
        var sessionId = "rec-" + Guid.NewGuid().ToString("N")[..8];
        await RunCommandAsync(CommandTypes.StartSession, sessionId, record: false);
        // As a session started before sharing existed: the agent's copy holds the full password alone.
        var passwordFile = Path.Combine(agent.DataDirectory, "sessions", sessionId, "password");
        await File.WriteAllBytesAsync(passwordFile, (await File.ReadAllBytesAsync(passwordFile))[..8]);
        Assert.Null(await agent.Recordings.RecordAsync(sessionId));
        Assert.Empty(Directory.GetFiles(agent.Recordings.Files.Directory, "*" + RecordingFiles.Extension));

        var service = new RecordingStreamService(agent.Recordings.Files, Microsoft.Extensions.Logging.Abstractions.NullLogger<RecordingStreamService>.Instance);
        foreach (var name in new[] { "../sessions.json", "", Guid.NewGuid().ToString("N") })
        {
            var (reply, body) = await ServeAsync(service, RecordingStreams.Download, name);
            Assert.Equal(400, reply.Status);
            Assert.Empty(body);
        }
    }

    [Fact]
    public async Task A_stopped_recording_is_no_longer_reported_as_running_once_it_has_completed()
    {
        var sessionId = "rec-" + Guid.NewGuid().ToString("N")[..8];
        await RunCommandAsync(CommandTypes.StartSession, sessionId, record: false);
        var recorder = await agent.Recordings.RecordAsync(sessionId);
        Assert.NotNull(recorder);

        await recorder.StopAsync();
        // At once, not when its bookkeeping catches up: a progress report now would reopen the catalog's ended row.
        Assert.DoesNotContain(recorder, agent.Recordings.Running);
        Assert.DoesNotContain(agent.Recordings.CurrentReports(), r => r.RecordingId == recorder.Id && r.EndedAt is null);
        await RunCommandAsync(CommandTypes.StopSession, sessionId, record: false);
    }

    [Fact]
    public async Task A_recorded_session_stops_even_when_the_list_of_sessions_to_record_cannot_be_saved()
    {
        var sessionId = "rec-" + Guid.NewGuid().ToString("N")[..8];
        await RunCommandAsync(CommandTypes.StartSession, sessionId, record: true);
        var recorder = await RecorderOfAsync(sessionId);
        // The list cannot be replaced any more (as on a full or read-only volume; the tests run as root, whom modes do not stop).
        var list = Path.Combine(agent.Recordings.Files.Directory, "recorded-sessions.json");
        File.Delete(list);
        Directory.CreateDirectory(list);

        await RunCommandAsync(CommandTypes.StopSession, sessionId, record: true);
        await recorder.Completion.WaitAsync(TimeSpan.FromSeconds(10));
        Directory.Delete(list);
    }

    [Fact]
    public async Task Deleting_the_running_recording_of_a_session_still_to_be_recorded_records_it_anew()
    {
        var sessionId = "rec-" + Guid.NewGuid().ToString("N")[..8];
        await RunCommandAsync(CommandTypes.StartSession, sessionId, record: true);
        var first = await RecorderOfAsync(sessionId);

        await agent.Recordings.DeleteAsync(first.Id);
        Assert.False(File.Exists(agent.Recordings.Files.PathOf(first.Id)));
        var second = await RecorderOfAsync(sessionId);
        Assert.NotEqual(first.Id, second.Id);
        Assert.True(File.Exists(agent.Recordings.Files.PathOf(second.Id)));

        await RunCommandAsync(CommandTypes.StopSession, sessionId, record: true);
        await second.Completion.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.DoesNotContain(agent.Recordings.Running, r => r.SessionId == sessionId);
    }

    private async Task RunCommandAsync(string type, string sessionId, bool record)
    {
        var template = new SessionTemplate("xterm", null, "xterm", 5900, null, null, new Dictionary<string, string>(), false, 0, null, Record: record);
        var payload = new SessionCommandPayload(sessionId, Guid.NewGuid(), "recorded", template);
        var result = await agent.Commands.ExecuteAsync(new CommandMessage(Guid.NewGuid(), type, sessionId, JsonSerializer.SerializeToElement(payload, AgentProtocol.Json)));
        Assert.True(result.Success, result.Error);
    }

    private async Task<SessionRecorder> RecorderOfAsync(string sessionId)
    {
        SessionRecorder? recorder = null;
        await Eventually.TrueAsync(() => Task.FromResult((recorder = agent.Recordings.Running.FirstOrDefault(r => r.SessionId == sessionId)) is not null),
            TimeSpan.FromSeconds(10), $"session {sessionId} to be recorded");
        return recorder!;
    }

    private Dictionary<string, string> XEnvironment(string sessionId)
    {
        var records = JsonDocument.Parse(File.ReadAllText(Path.Combine(agent.DataDirectory, "sessions.json"))).RootElement;
        return new Dictionary<string, string>
        {
            ["DISPLAY"] = ":" + records.EnumerateArray().Single(r => r.GetProperty("SessionId").GetString() == sessionId).GetProperty("Display").GetInt32(),
            ["XAUTHORITY"] = Path.Combine(agent.DataDirectory, "sessions", sessionId, "run", "Xauthority"),
        };
    }

    /// <summary>Gives the session's xterm the keyboard focus, as a click in it would, so typed keys reach it.</summary>
    private async Task FocusXtermAsync(string sessionId)
    {
        var focused = await ProcessRunner.RunAsync("xdotool", ["search", "--sync", "--class", "XTerm", "windowactivate", "--sync"], XEnvironment(sessionId), TimeSpan.FromSeconds(20));
        Assert.True(focused.ExitCode == 0, $"xdotool could not focus the xterm: {focused.StandardError}");
    }

    /// <summary>Serves a recording stream into memory; returns the reply and the bytes after it.</summary>
    private static async Task<(FileStreamReply Reply, byte[] Body)> ServeAsync(RecordingStreamService service, string purpose, string name)
    {
        using var data = new MemoryStream();
        await service.ServeAsync(purpose, name, data, CancellationToken.None);
        data.Position = 0;
        var reply = await FileStreams.ReadReplyAsync(data, CancellationToken.None);
        var body = data.ToArray()[(int)data.Position..];
        Assert.Equal(reply.Size ?? 0, body.Length);
        return (reply, body);
    }

    /// <summary>Whether the recording so far, replayed, shows something other than black where the moved terminal is (a
    /// record still being written at the end is left out).</summary>
    private static bool ShowsTerminalBeyondFirstSize(byte[] recording)
    {
        try
        {
            using var decoder = new RfbDecoder(RecordingReader.Open(new MemoryStream(recording)));
            decoder.ApplyAll();
            if ((decoder.Width, decoder.Height) != (1600, 1000))
            {
                return false;
            }

            var beyond = Enumerable.Range(850, 100).SelectMany(y => Enumerable.Range(1360, 200).Select(column => ((y * 1600) + column) * 4));
            return beyond.Any(at => decoder.Frame[at] != 0 || decoder.Frame[at + 1] != 0 || decoder.Frame[at + 2] != 0);
        }
        catch (Exception e) when (e is EndOfStreamException or InvalidDataException or IOException)
        {
            return false;
        }
    }
}
