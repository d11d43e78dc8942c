using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.RegularExpressions;
using StreamSpace.Contracts;

namespace StreamSpace.Agent.Platforms.Local;

/// <summary>
/// Runs each session as local processes: Xvnc with a per-session password only the agent knows, a window manager
/// and the template's command, with HOME in a per-user folder under the agent's data directory.
/// </summary>
public sealed partial class LocalPlatform : ISessionPlatform, IDisposable
{
    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(20);
    private readonly ConcurrentDictionary<string, LocalSessionRecord> sessions = new();
    private readonly ConcurrentDictionary<string, SemaphoreSlim> locks = new();
    private readonly SemaphoreSlim stateFileLock = new(1, 1);
    private readonly string stateFile;
    private readonly string dataDirectory;
    private readonly ILogger<LocalPlatform> logger;
    private readonly Timer monitor;

    private readonly CancellationToken agentStopping;

    public LocalPlatform(AgentSettings settings, IHostApplicationLifetime lifetime, ILogger<LocalPlatform> logger)
    {
        this.logger = logger;
        agentStopping = lifetime.ApplicationStopping;
        dataDirectory = Path.GetFullPath(settings.DataDirectory);
        Directory.CreateDirectory(Path.Combine(dataDirectory, "sessions"));
        Directory.CreateDirectory(Path.Combine(dataDirectory, "homes"));
        stateFile = Path.Combine(dataDirectory, "sessions.json");
        Recover();
        monitor = new Timer(_ => _ = CheckProcessesAsync(), null, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
    }

    public string Name => "local";

    public event Action<ReportedSession>? SessionChanged;

    private readonly ConcurrentDictionary<string, long> lastActivity = new();

    public async Task<VncEndpoint?> FindVncAsync(string sessionId, CancellationToken cancellationToken) =>
        sessions.TryGetValue(sessionId, out var record) && record.State == "running"
            ? new VncEndpoint("127.0.0.1", record.VncPort, await File.ReadAllTextAsync(Path.Combine(record.Directory, "password"), cancellationToken))
            : null;

    public void NoteActivity(string sessionId) => lastActivity[sessionId] = Environment.TickCount64;

    /// <summary>The programs every local session runs: the X server with VNC, and the window manager.</summary>
    private static readonly string[] RequiredPrograms = ["Xvnc", "openbox"];

    public Task<IReadOnlyList<AgentCheck>> CheckAsync(CancellationToken cancellationToken)
    {
        var missing = RequiredPrograms.Where(program => !OnPath(program)).ToList();
        AgentCheck check = missing.Count == 0
            ? new("local.programs", "The local platform's programs are installed", AgentCheck.Ok, $"{string.Join(", ", RequiredPrograms)} found on PATH")
            : new("local.programs", "The local platform's programs are installed", AgentCheck.Fail, $"not found on PATH: {string.Join(", ", missing)}",
                "Install them on the agent's machine: apt-get install tigervnc-standalone-server openbox.");
        return Task.FromResult<IReadOnlyList<AgentCheck>>([check]);
    }

    private static bool OnPath(string program) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Any(directory => File.Exists(Path.Combine(directory, program)));

    public Task<IReadOnlyList<ReportedSession>> ListSessionsAsync(CancellationToken cancellationToken) =>
        Task.FromResult<IReadOnlyList<ReportedSession>>([.. sessions.Values.Select(Report)]);

    public Task<ReportedSession> StartAsync(SessionCommandPayload session, CancellationToken cancellationToken) =>
        WithLockAsync(session.SessionId, async () =>
        {
            if (sessions.TryGetValue(session.SessionId, out var existing) && existing.State is "running")
            {
                return Report(existing);
            }

            return await LaunchAsync(session, cancellationToken);
        });

    public Task<ReportedSession> WakeAsync(SessionCommandPayload session, CancellationToken cancellationToken) =>
        StartAsync(session, cancellationToken);

    public Task<ReportedSession> StopAsync(string sessionId, CancellationToken cancellationToken) =>
        EndAsync(sessionId, "stopped", keepRecord: false);

    public Task<ReportedSession> HibernateAsync(SessionCommandPayload session, CancellationToken cancellationToken) =>
        EndAsync(session.SessionId, "hibernated", keepRecord: true);

    private async Task<ReportedSession> LaunchAsync(SessionCommandPayload session, CancellationToken cancellationToken)
    {
        var template = session.Template;
        if (string.IsNullOrWhiteSpace(template.Command))
        {
            throw new InvalidOperationException($"template '{template.Name}' has no command for the local platform");
        }

        var directory = Path.Combine(dataDirectory, "sessions", session.SessionId);
        Directory.CreateDirectory(directory);
        var home = Path.Combine(dataDirectory, "homes", SafeName(session.Username));
        Directory.CreateDirectory(home);
        await LocalSessionProcess.CreatePasswordFileAsync(directory, cancellationToken);

        // A free port can be taken by someone else before Xvnc binds it, so a start that dies at once is tried again.
        const int attempts = 3;
        for (var attempt = 1; ; attempt++)
        {
            var record = new LocalSessionRecord
            {
                SessionId = session.SessionId,
                Username = session.Username,
                Template = template.Name,
                Home = home,
                Directory = directory,
                Display = LocalSessionProcess.FreeDisplay(sessions.Values.Select(s => s.Display)),
                VncPort = LocalSessionProcess.FreePort(),
                State = "starting",
                IdleTimeoutSeconds = template.IdleTimeoutSeconds,
                MaxDurationSeconds = template.MaxDurationSeconds,
            };
            // A stopping agent starts nothing it could no longer report; the control plane re-sends the start to its
            // next connection, since no answer was given.
            agentStopping.ThrowIfCancellationRequested();
            var started = await LocalSessionProcess.StartAsync(record, template.Command, template.Env, Path.Combine(directory, "session.log"));
            record = record with { ProcessGroup = started.ProcessGroup, StartedAt = DateTimeOffset.UtcNow };
            if (agentStopping.IsCancellationRequested)
            {
                // The agent began stopping while the processes started: its shutdown has listed the sessions already
                // (or will not), so nobody else would ever stop these.
                await LocalSessionProcess.StopAsync(record.ProcessGroup);
                agentStopping.ThrowIfCancellationRequested();
            }

            // No await between the check above and this: a shutdown either saw this session or made us stop it.
            sessions[record.SessionId] = record;
            await SaveAsync();
            logger.LogInformation("Session {SessionId}: started Xvnc on :{Display} (port {Port}) for {User}, waiting for its RFB banner",
                record.SessionId, record.Display, record.VncPort, record.Username);

            var failure = await WaitUntilReadyAsync(record, started.Ready, cancellationToken);
            if (failure is null)
            {
                return await MarkRunningAsync(record);
            }

            await LocalSessionProcess.StopAsync(record.ProcessGroup);
            if (attempt < attempts && LocalSessionProcess.ExitedAtStart(failure))
            {
                logger.LogWarning("Session {SessionId}: start attempt {Attempt} failed ({Reason}); trying another display and port", record.SessionId, attempt, failure);
                continue;
            }

            sessions[record.SessionId] = record with { State = "failed", FailureReason = failure };
            await SaveAsync();
            throw new InvalidOperationException(failure);
        }
    }

    /// <summary>
    /// Waits for Xvnc's own readiness signal, then confirms the RFB banner; returns why the session did not become
    /// ready, or null once it is.
    /// </summary>
    private async Task<string?> WaitUntilReadyAsync(LocalSessionRecord record, Task<bool> signalled, CancellationToken cancellationToken)
    {
        using var ready = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        ready.CancelAfter(ReadyTimeout);
        string Exited() => $"{LocalSessionProcess.ExitedAtStartReason}: {LastLine(Path.Combine(record.Directory, "session.log"))}";
        string TimedOut() => $"the VNC server did not answer within {ReadyTimeout.TotalSeconds:0}s";
        try
        {
            if (!await signalled.WaitAsync(ready.Token))
            {
                return Exited();
            }
        }
        catch (OperationCanceledException) when (ready.IsCancellationRequested)
        {
            return TimedOut();
        }

        // Xvnc opens its RFB listener before it signals, so this normally answers at once; the loop is a safety net.
        while (!await LocalSessionProcess.AnswersRfbAsync(record.VncPort, ready.Token))
        {
            if (!LocalSessionProcess.IsAlive(record.ProcessGroup))
            {
                return Exited();
            }

            if (ready.IsCancellationRequested)
            {
                return TimedOut();
            }

            await Task.Delay(20, CancellationToken.None);
        }

        return null;
    }

    private async Task<ReportedSession> MarkRunningAsync(LocalSessionRecord record)
    {
        record = record with { State = "running", FailureReason = null };
        sessions[record.SessionId] = record;
        lastActivity[record.SessionId] = Environment.TickCount64;
        await SaveAsync();
        logger.LogInformation("Session {SessionId} started successfully", record.SessionId);
        return Report(record);
    }

    private Task<ReportedSession> EndAsync(string sessionId, string state, bool keepRecord) =>
        WithLockAsync(sessionId, async () =>
        {
            if (!sessions.TryGetValue(sessionId, out var record))
            {
                return new ReportedSession(sessionId, state);
            }

            // Marked first, so the process monitor does not report the processes we end as a crash.
            sessions[sessionId] = record with { State = state == "stopped" ? "stopping" : "hibernating" };
            await LocalSessionProcess.StopAsync(record.ProcessGroup);
            if (keepRecord)
            {
                sessions[sessionId] = record with { State = state, ProcessGroup = 0 };
            }
            else
            {
                sessions.TryRemove(sessionId, out _);
                try
                {
                    Directory.Delete(record.Directory, recursive: true);
                }
                catch (IOException e)
                {
                    // The processes are gone, which is what matters; a leftover folder only costs disk.
                    logger.LogWarning("Session {SessionId}: could not remove {Directory}: {Reason}", sessionId, record.Directory, e.Message);
                }
            }

            await SaveAsync();
            logger.LogInformation("Session {SessionId} is {State}; its processes are gone", sessionId, state);
            return new ReportedSession(sessionId, state);
        });

    /// <summary>
    /// Once a second: reports sessions whose processes died on their own as failed, hibernates sessions no viewer
    /// has sent input to for their idle timeout, and stops sessions past their maximum duration.
    /// </summary>
    private async Task CheckProcessesAsync()
    {
        foreach (var record in sessions.Values.Where(r => r.State == "running"))
        {
            if (!LocalSessionProcess.IsAlive(record.ProcessGroup))
            {
                var failed = record with { State = "failed", FailureReason = "the session's processes exited" };
                if (sessions.TryUpdate(record.SessionId, failed, record))
                {
                    logger.LogWarning("Session {SessionId}: its processes exited unexpectedly", record.SessionId);
                    await SaveAsync();
                    SessionChanged?.Invoke(Report(failed));
                }

                continue;
            }

            var idle = TimeSpan.FromMilliseconds(Environment.TickCount64 - lastActivity.GetOrAdd(record.SessionId, Environment.TickCount64));
            if (record.IdleTimeoutSeconds > 0 && idle > TimeSpan.FromSeconds(record.IdleTimeoutSeconds))
            {
                logger.LogInformation("Session {SessionId}: no input for {Idle:0}s; hibernating it", record.SessionId, idle.TotalSeconds);
                SessionChanged?.Invoke(await EndAsync(record.SessionId, "hibernated", keepRecord: true));
            }
            else if (record is { MaxDurationSeconds: > 0, StartedAt: { } started } && DateTimeOffset.UtcNow - started > TimeSpan.FromSeconds(record.MaxDurationSeconds.Value))
            {
                logger.LogInformation("Session {SessionId}: reached its maximum duration; stopping it", record.SessionId);
                SessionChanged?.Invoke(await EndAsync(record.SessionId, "stopped", keepRecord: false));
            }
        }
    }

    /// <summary>After an agent restart: sessions whose processes still run are kept; the others are reported failed.</summary>
    private void Recover()
    {
        if (!File.Exists(stateFile))
        {
            return;
        }

        var saved = JsonSerializer.Deserialize<List<LocalSessionRecord>>(File.ReadAllText(stateFile)) ?? [];
        foreach (var record in saved)
        {
            var recovered = record.State == "running" && !LocalSessionProcess.IsAlive(record.ProcessGroup)
                ? record with { State = "failed", FailureReason = "the session's processes were gone when the agent restarted" }
                : record;
            sessions[record.SessionId] = recovered;
            logger.LogInformation("Recovered session {SessionId}: {State}", record.SessionId, recovered.State);
        }
    }

    private async Task SaveAsync()
    {
        await stateFileLock.WaitAsync();
        try
        {
            var temporary = stateFile + ".tmp";
            await File.WriteAllTextAsync(temporary, JsonSerializer.Serialize(sessions.Values.ToList()));
            File.Move(temporary, stateFile, overwrite: true);
        }
        finally
        {
            stateFileLock.Release();
        }
    }

    private async Task<ReportedSession> WithLockAsync(string sessionId, Func<Task<ReportedSession>> action)
    {
        var gate = locks.GetOrAdd(sessionId, _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync();
        try
        {
            return await action();
        }
        finally
        {
            gate.Release();
        }
    }

    private static ReportedSession Report(LocalSessionRecord record) =>
        new(record.SessionId, record.State, record.FailureReason,
            JsonSerializer.SerializeToElement(new { host = "127.0.0.1", vnc_port = record.VncPort, display = record.Display }));

    private static string LastLine(string file) =>
        File.Exists(file) ? File.ReadLines(file).LastOrDefault(l => l.Trim().Length > 0)?.Trim() ?? "no output" : "no output";

    [GeneratedRegex("[^A-Za-z0-9._@-]")]
    private static partial Regex UnsafeCharacters();

    private static string SafeName(string username) => UnsafeCharacters().Replace(username, "_");

    public void Dispose() => monitor.Dispose();
}
