using System.Collections.Concurrent;
using System.Text.Json;
using StreamSpace.Agent.Platforms;
using StreamSpace.Contracts;

namespace StreamSpace.Agent.Recording;

/// <summary>
/// Which sessions are recorded, and their recorders: at most one per session. A session whose template says record
/// is recorded from the moment it runs (after its start or wake command, or when the platform reports it running); a
/// <see cref="RecordSessionMessage"/> records a running session from now. A recording ends when its session stops or
/// hibernates, its VNC server goes away, or the agent stops. Every recording is reported as a <see cref="RecordingMessage"/>
/// when it starts, every <see cref="ReportInterval"/> while it runs, and with its end.
/// </summary>
public sealed class SessionRecordings : IHostedService, IDisposable
{
    public static readonly TimeSpan ReportInterval = TimeSpan.FromSeconds(5);

    /// <summary>How long an ended recording's final report is sent again on every reconnect, so a catalog that missed it learns it.</summary>
    public static readonly TimeSpan FinalReportKept = TimeSpan.FromMinutes(10);

    private static readonly TimeSpan DialTimeout = TimeSpan.FromSeconds(10);

    private readonly ISessionPlatform platform;
    private readonly RecordingFiles files;
    private readonly TimeProvider time;
    private readonly ILogger<SessionRecordings> logger;
    private readonly ConcurrentDictionary<string, bool> wanted = new();
    private readonly Lock wantedFileLock = new();
    private readonly string wantedFile;
    private readonly ConcurrentDictionary<string, Lazy<Task<SessionRecorder?>>> running = new();
    private readonly ConcurrentDictionary<Guid, RecordingMessage> finals = new();
    private readonly CancellationTokenSource stopping = new();
    private readonly Lock reportLock = new();
    private ITimer? reporter;

    public SessionRecordings(ISessionPlatform platform, RecordingFiles files, TimeProvider time, ILogger<SessionRecordings> logger)
    {
        this.platform = platform;
        this.files = files;
        this.time = time;
        this.logger = logger;
        wantedFile = Path.Combine(files.Directory, "recorded-sessions.json");
        foreach (var sessionId in LoadWanted())
        {
            wanted[sessionId] = true;
        }

        platform.SessionChanged += OnSessionChanged;
    }

    /// <summary>Raised for every report: start, progress, end. The control plane client sends it while connected.</summary>
    public event Action<RecordingMessage>? Reported;

    public RecordingFiles Files => files;

    /// <summary>The recordings running now, by session. One that completed is left out at once, before its final report
    /// (its entry goes a moment later): no progress report may follow the final one and reopen its catalog row.</summary>
    public IReadOnlyList<SessionRecorder> Running =>
        [.. running.Values.Where(r => r.IsValueCreated && r.Value.IsCompletedSuccessfully && r.Value.Result is { Completion.IsCompleted: false })
            .Select(r => r.Value.Result!)];

    /// <summary>What a control plane that just connected should hear: every running recording now, and recent ends.</summary>
    public IReadOnlyList<RecordingMessage> CurrentReports()
    {
        var cutoff = time.GetUtcNow() - FinalReportKept;
        foreach (var (id, final) in finals)
        {
            if (final.EndedAt < cutoff)
            {
                finals.TryRemove(id, out _);
            }
        }

        lock (reportLock)
        {
            return [.. Running.Select(Progress), .. finals.Values];
        }
    }

    /// <summary>
    /// Reports progress from now on, and records again the sessions that were recorded when the agent last stopped and
    /// run still (a platform that finds its sessions later reports them running, which starts their recordings then).
    /// </summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        reporter = time.CreateTimer(_ => ReportProgress(), null, ReportInterval, ReportInterval);
        foreach (var sessionId in wanted.Keys)
        {
            if (await platform.FindVncAsync(sessionId, cancellationToken) is not null)
            {
                _ = RecordAsync(sessionId);
            }
        }
    }

    /// <summary>The agent is stopping: every recording gets its end record.</summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await stopping.CancelAsync();
        await Task.WhenAll(running.Keys.Select(StopSessionAsync));
    }

    /// <summary>A start or wake command is about to run: with its template's record setting, the session is recorded whenever it runs.</summary>
    public void SessionStarting(SessionCommandPayload payload)
    {
        if (payload.Template.Record)
        {
            Want(payload.SessionId);
        }
    }

    /// <summary>A start or wake command ran: a session to record that runs now is recorded; one that failed is forgotten.</summary>
    public async Task SessionStartedAsync(string sessionId, SessionState state)
    {
        if (!wanted.ContainsKey(sessionId))
        {
            return;
        }

        if (state == SessionState.Running)
        {
            _ = RecordAsync(sessionId);
        }
        else if (state is SessionState.Stopped or SessionState.Failed)
        {
            await SessionEndedAsync(sessionId, state);
        }
    }

    /// <summary>
    /// Records a running session (a <see cref="RecordSessionMessage"/>, or its template's setting); the session's
    /// recording when one runs already. Null when it could not start: the session does not run here, or has no view-only password.
    /// </summary>
    public Task<SessionRecorder?> RecordAsync(string sessionId)
    {
        if (stopping.IsCancellationRequested)
        {
            return Task.FromResult<SessionRecorder?>(null);
        }

        Want(sessionId);
        while (true)
        {
            var entry = running.GetOrAdd(sessionId, id => new Lazy<Task<SessionRecorder?>>(() => BeginAsync(id)));
            // A recorder that completed and whose entry is still to go (a delete that records the session anew) is no recording.
            if (entry.IsValueCreated && entry.Value.IsCompletedSuccessfully && entry.Value.Result is { Completion.IsCompleted: true })
            {
                running.TryRemove(new KeyValuePair<string, Lazy<Task<SessionRecorder?>>>(sessionId, entry));
                continue;
            }

            return entry.Value;
        }
    }

    private async Task<SessionRecorder?> BeginAsync(string sessionId)
    {
        SessionRecorder? recorder = null;
        try
        {
            using var dial = CancellationTokenSource.CreateLinkedTokenSource(stopping.Token);
            dial.CancelAfter(DialTimeout);
            var endpoint = await platform.FindVncAsync(sessionId, dial.Token)
                ?? throw new InvalidOperationException("the session is not running on this agent");
            recorder = await SessionRecorder.StartAsync(endpoint, sessionId, Guid.NewGuid(), files, time, dial.Token);
        }
        catch (Exception e)
        {
            logger.LogWarning("Session {SessionId} is not recorded: {Reason}", sessionId, e is OperationCanceledException ? "its VNC server did not answer in time" : e.Message);
            running.TryRemove(sessionId, out _);
            return null;
        }

        logger.LogInformation("Recording session {SessionId} as {RecordingId} in {File}", sessionId, recorder.Id, files.PathOf(recorder.Id));
        Report(Progress(recorder));
        _ = recorder.Completion.ContinueWith(_ => Ended(recorder), TaskScheduler.Default);
        return recorder;
    }

    private void Ended(SessionRecorder recorder)
    {
        // Only this recorder's own entry goes (a new recording may have taken the session's place already); an entry not
        // yet completed may be its own, ended before its start was even returned, and goes once that is known.
        if (running.TryGetValue(recorder.SessionId, out var entry) && entry.IsValueCreated)
        {
            _ = entry.Value.ContinueWith(start =>
            {
                if (start.IsCompletedSuccessfully && start.Result == recorder)
                {
                    running.TryRemove(new KeyValuePair<string, Lazy<Task<SessionRecorder?>>>(recorder.SessionId, entry));
                }
            }, TaskScheduler.Default);
        }

        var final = Progress(recorder) with { EndedAt = recorder.StartedAt.AddMilliseconds(recorder.DurationMs) };
        logger.LogInformation("Recording {RecordingId} of session {SessionId} ended after {Seconds:0.0}s, {Bytes} bytes{Reason}",
            recorder.Id, recorder.SessionId, recorder.DurationMs / 1000.0, recorder.Bytes, recorder.EndReason is { } reason ? ": " + reason : "");
        // Under the report lock: a progress report that saw the recorder running is sent before this, never after.
        lock (reportLock)
        {
            finals[recorder.Id] = final;
            Report(final);
        }
    }

    /// <summary>Ends the session's recording, if one runs, and waits for its end record.</summary>
    public async Task StopSessionAsync(string sessionId)
    {
        if (running.TryGetValue(sessionId, out var entry) && await entry.Value is { } recorder)
        {
            await StopAsync(recorder);
        }
    }

    /// <summary>Stops a recorder; one that failed is logged, never thrown: bookkeeping must not fail a command or the connection.</summary>
    private async Task StopAsync(SessionRecorder recorder)
    {
        try
        {
            await recorder.StopAsync();
        }
        catch (Exception e)
        {
            logger.LogWarning("Recording {RecordingId} of session {SessionId} failed as it stopped: {Reason}", recorder.Id, recorder.SessionId, e.Message);
        }
    }

    /// <summary>The session stopped for good: end its recording, and forget that it wants one.</summary>
    public async Task SessionEndedAsync(string sessionId, SessionState state)
    {
        if (state is SessionState.Stopped or SessionState.Failed)
        {
            if (wanted.TryRemove(sessionId, out _))
            {
                SaveWanted();
            }
        }

        await StopSessionAsync(sessionId);
    }

    /// <summary>
    /// Stops the recording if it runs, and deletes its file; one that is gone is no error. A session still to be recorded
    /// is recorded anew at once, so it is never silently unrecorded while it counts as recorded.
    /// </summary>
    public async Task DeleteAsync(Guid recordingId)
    {
        var recorder = Running.FirstOrDefault(r => r.Id == recordingId);
        if (recorder is not null)
        {
            await StopAsync(recorder);
        }

        finals.TryRemove(recordingId, out _);
        try
        {
            var deleted = files.Delete(recordingId);
            logger.LogInformation("Recording {RecordingId} {Outcome}", recordingId, deleted ? "deleted" : "was already gone");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            logger.LogWarning("Recording {RecordingId} could not be deleted: {Reason}", recordingId, e.Message);
        }

        if (recorder is not null && wanted.ContainsKey(recorder.SessionId))
        {
            logger.LogInformation("Session {SessionId} is still to be recorded: recording it anew", recorder.SessionId);
            await RecordAsync(recorder.SessionId);
        }
    }

    private void Want(string sessionId)
    {
        if (wanted.TryAdd(sessionId, true))
        {
            SaveWanted();
        }
    }

    /// <summary>The sessions to record, kept beside the recordings so an agent restart records them on.</summary>
    private void SaveWanted()
    {
        lock (wantedFileLock)
        {
            try
            {
                var temporary = wantedFile + ".tmp";
                File.WriteAllBytes(temporary, JsonSerializer.SerializeToUtf8Bytes(wanted.Keys.Order().ToArray()));
                File.Move(temporary, wantedFile, overwrite: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // A full or read-only volume must not fail the command or the connection that changed the list.
                logger.LogWarning("Could not save {File}; an agent restart may not record the same sessions on: {Reason}", wantedFile, e.Message);
            }
        }
    }

    private string[] LoadWanted()
    {
        try
        {
            return File.Exists(wantedFile) ? JsonSerializer.Deserialize<string[]>(File.ReadAllBytes(wantedFile)) ?? [] : [];
        }
        catch (JsonException e)
        {
            logger.LogWarning("Ignoring {File}, which is not a list of session ids: {Reason}", wantedFile, e.Message);
            return [];
        }
    }

    private void OnSessionChanged(ReportedSession session)
    {
        if (session.State == SessionState.Running)
        {
            if (wanted.ContainsKey(session.SessionId))
            {
                _ = RecordAsync(session.SessionId);
            }
        }
        else if (session.State is SessionState.Stopped or SessionState.Failed or SessionState.Hibernated)
        {
            _ = SessionEndedAsync(session.SessionId, session.State);
        }
    }

    private void ReportProgress()
    {
        lock (reportLock)
        {
            foreach (var recorder in Running)
            {
                Report(Progress(recorder));
            }
        }
    }

    private static RecordingMessage Progress(SessionRecorder recorder) =>
        new(recorder.Id, recorder.SessionId, recorder.StartedAt, recorder.DurationMs, recorder.Bytes);

    private void Report(RecordingMessage message)
    {
        try
        {
            Reported?.Invoke(message);
        }
        catch (Exception e)
        {
            logger.LogWarning("Could not report recording {RecordingId}: {Reason}", message.RecordingId, e.Message);
        }
    }

    /// <summary>Leaves <see cref="stopping"/> undisposed (it has no timer): a host stopped again after disposal calls <see cref="StopAsync"/> once more.</summary>
    public void Dispose()
    {
        platform.SessionChanged -= OnSessionChanged;
        reporter?.Dispose();
    }
}
