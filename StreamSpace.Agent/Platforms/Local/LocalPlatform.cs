using System.Collections.Concurrent;
using System.Text.Json;
using System.Security.Cryptography;
using StreamSpace.Agent.Tunnel;
using StreamSpace.Contracts;

namespace StreamSpace.Agent.Platforms.Local;

/// <summary>
/// Runs each session as local processes under the OS account of its user (see <see cref="SessionAccounts"/>): Xvnc
/// with a per-session password and X authority cookie, a window manager and the template's command, with HOME in a
/// folder of the user's own under the agent's data directory.
/// </summary>
/// <remarks>
/// The data directory's layout and modes: the directory, sessions/ and homes/ are the agent's, rwx--x--x, so an
/// account can pass through to its own folders but list nothing; homes/&lt;user id&gt; is the user's account's, 0700;
/// sessions/&lt;id&gt; is the agent's (its log and the tunnel's copy of the password, 0600), with run/ inside it the
/// account's, 0700 (what Xvnc reads). The state file is the agent's, 0600.
/// </remarks>
public sealed class LocalPlatform : ISessionPlatform, IDisposable
{
    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(20);
    private readonly ConcurrentDictionary<string, LocalSessionRecord> sessions = new();
    private readonly ConcurrentDictionary<string, SemaphoreSlim> locks = new();
    private readonly SemaphoreSlim stateFileLock = new(1, 1);
    private readonly string stateFile;
    private readonly string dataDirectory;
    private readonly ILogger<LocalPlatform> logger;
    private readonly TimeProvider time;
    private readonly SessionClock clock;
    private ITimer? monitor;

    private readonly CancellationToken agentStopping;
    private readonly SessionAccounts accounts;

    /// <summary>
    /// Per account (by uid): held while a session's processes start until they are recorded, and while the account's
    /// leftover processes are swept, so the sweep never catches a session of the same account that is starting.
    /// </summary>
    private readonly ConcurrentDictionary<int, SemaphoreSlim> accountLocks = new();

    private SemaphoreSlim AccountLock(SessionAccount account) => accountLocks.GetOrAdd(account.Uid, _ => new SemaphoreSlim(1, 1));

    public LocalPlatform(AgentSettings settings, SessionAccounts accounts, IHostApplicationLifetime lifetime, TimeProvider time, ILogger<LocalPlatform> logger)
    {
        this.logger = logger;
        this.time = time;
        clock = new SessionClock(time);
        this.accounts = accounts;
        agentStopping = lifetime.ApplicationStopping;
        dataDirectory = Path.GetFullPath(settings.DataDirectory);
        if (accounts.Isolated && UnixFiles.FirstClosedParent(dataDirectory) is { } closed)
        {
            throw new StreamSpace.Settings.InvalidSettingException("AGENT_DATA_DIR",
                $"is {dataDirectory}, inside {closed}, which other accounts cannot pass through, so session accounts could not reach their homes: choose a folder such as /var/lib/streamspace-agent.");
        }

        UnixFiles.CreateDirectory(dataDirectory, UnixFiles.PassThrough);
        UnixFiles.CreateDirectory(Path.Combine(dataDirectory, "sessions"), UnixFiles.PassThrough);
        UnixFiles.CreateDirectory(Path.Combine(dataDirectory, "homes"), UnixFiles.PassThrough);
        stateFile = Path.Combine(dataDirectory, "sessions.json");
        Recover();
    }

    /// <summary>Once a second from now on: reports sessions whose processes died, and enforces idle timeouts and maximum durations.</summary>
    public Task StartMonitoringAsync(CancellationToken cancellationToken)
    {
        monitor = time.CreateTimer(_ => _ = CheckProcessesAsync(), null, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
        clock.Start(EnforceAsync, logger);
        return Task.CompletedTask;
    }

    public string Name => "local";

    public event Action<ReportedSession>? SessionChanged;

    public async Task<VncEndpoint?> FindVncAsync(string sessionId, CancellationToken cancellationToken) =>
        sessions.TryGetValue(sessionId, out var record) && record.State == SessionState.Running
            ? Endpoint(record.VncPort, await File.ReadAllBytesAsync(record.AgentPasswordFile, cancellationToken))
            : null;

    /// <summary>
    /// The agent's copy holds the full password's 8 bytes, then the view-only password's 8; a session started before
    /// sharing existed has the first 8 only. Latin-1 carries each byte as one character (see RfbBridge).
    /// </summary>
    private static VncEndpoint Endpoint(int port, byte[] passwords) =>
        new("127.0.0.1", port, System.Text.Encoding.Latin1.GetString(passwords, 0, VncPasswordFile.PasswordLength))
        {
            ViewOnlyPassword = passwords.Length >= 2 * VncPasswordFile.PasswordLength
                ? System.Text.Encoding.Latin1.GetString(passwords, VncPasswordFile.PasswordLength, VncPasswordFile.PasswordLength)
                : null,
        };

    public Task<SessionHome?> FindHomeAsync(string sessionId, CancellationToken cancellationToken) =>
        Task.FromResult(sessions.TryGetValue(sessionId, out var record) && record.State == SessionState.Running && record.Account is { } account
            ? new SessionHome(sessionId, record.Home, account)
            : null);

    public Task<SessionSound?> FindSoundAsync(string sessionId, CancellationToken cancellationToken) =>
        Task.FromResult(sessions.TryGetValue(sessionId, out var record) && record.State == SessionState.Running && record.Account is { } account
            ? new SessionSound(sessionId, record.Audio ? record.SoundSocket : null, account, accounts.Isolated)
            : null);

    public void NoteActivity(string sessionId) => clock.NoteInput(sessionId);

    /// <summary>The programs every local session runs: the X server with VNC, and the window manager.</summary>
    private static readonly string[] RequiredPrograms = ["Xvnc", "openbox"];

    public Task<IReadOnlyList<AgentCheck>> CheckAsync(CancellationToken cancellationToken)
    {
        var missing = RequiredPrograms.Where(program => !OnPath(program)).ToList();
        AgentCheck programs = missing.Count == 0
            ? new("local.programs", "The local platform's programs are installed", AgentCheck.Ok, $"{string.Join(", ", RequiredPrograms)} found on PATH")
            : new("local.programs", "The local platform's programs are installed", AgentCheck.Fail, $"not found on PATH: {string.Join(", ", missing)}",
                "Install them on the agent's machine: apt-get install tigervnc-standalone-server openbox.");
        const string isolationTitle = "Sessions are isolated from the agent and from each other";
        AgentCheck isolation = accounts.Isolated
            ? new("local.isolation", isolationTitle, AgentCheck.Ok, "each user's sessions run under an unprivileged OS account of their own (LOCAL_ISOLATION=accounts)")
            : new("local.isolation", isolationTitle, AgentCheck.Fail,
                $"sessions are not isolated from the agent or from each other: LOCAL_ISOLATION=none, so every session runs as the agent's account ({Environment.UserName})",
                "Run the agent as root and unset LOCAL_ISOLATION; none is for a personal development machine only.");
        return Task.FromResult<IReadOnlyList<AgentCheck>>([programs, isolation, SoundCheck()]);
    }

    /// <summary>The programs and library of a session's sound: the sound server, the capture and the Opus encoder.</summary>
    private static readonly string[] SoundPrograms = ["pulseaudio", "parec"];

    /// <summary>Without them sessions still run, silent: a warning, not a failure.</summary>
    private static AgentCheck SoundCheck()
    {
        const string title = "Sessions' sound can be played and captured";
        var missing = SoundPrograms.Where(program => !OnPath(program)).ToList();
        if (!System.Runtime.InteropServices.NativeLibrary.TryLoad("libopus.so.0", out var opus))
        {
            missing.Add("libopus.so.0");
        }
        else
        {
            System.Runtime.InteropServices.NativeLibrary.Free(opus);
        }

        return missing.Count == 0
            ? new("local.sound", title, AgentCheck.Ok, $"{string.Join(", ", SoundPrograms)} and libopus.so.0 found")
            : new("local.sound", title, AgentCheck.Warn, $"not found: {string.Join(", ", missing)}; sessions of templates with audio play no sound",
                "Install them on the agent's machine: apt-get install pulseaudio pulseaudio-utils libopus0.");
    }

    private static bool OnPath(string program) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Any(directory => File.Exists(Path.Combine(directory, program)));

    public Task<IReadOnlyList<ReportedSession>> ListSessionsAsync(CancellationToken cancellationToken) =>
        Task.FromResult<IReadOnlyList<ReportedSession>>([.. sessions.Values.Select(Report)]);

    public Task<ReportedSession> StartAsync(SessionCommandPayload session, CancellationToken cancellationToken) =>
        WithLockAsync(session.SessionId, async () =>
        {
            if (sessions.TryGetValue(session.SessionId, out var existing) && existing.State is SessionState.Running)
            {
                return Report(existing);
            }

            return await LaunchAsync(session, cancellationToken);
        });

    public Task<ReportedSession> WakeAsync(SessionCommandPayload session, CancellationToken cancellationToken) =>
        StartAsync(session, cancellationToken);

    public Task<ReportedSession> StopAsync(string sessionId, CancellationToken cancellationToken) =>
        EndAsync(sessionId, SessionState.Stopped, keepRecord: false);

    public Task<ReportedSession> HibernateAsync(SessionCommandPayload session, CancellationToken cancellationToken) =>
        EndAsync(session.SessionId, SessionState.Hibernated, keepRecord: true);

    private async Task<ReportedSession> LaunchAsync(SessionCommandPayload session, CancellationToken cancellationToken)
    {
        var template = session.Template;
        if (string.IsNullOrWhiteSpace(template.Command))
        {
            throw new InvalidOperationException($"template '{template.Name}' has no command for the local platform");
        }

        // The API never places such a template here; refusing (rather than starting without the variables) keeps a
        // program from running with its credentials silently missing.
        if (template.SecretEnv is { Count: > 0 } secretEnv)
        {
            throw new InvalidOperationException(
                $"template '{template.Name}' takes env {string.Join(", ", secretEnv.Keys.Order(StringComparer.Ordinal))} from a Kubernetes Secret (secret_ref), which the local platform cannot read");
        }

        // Homes are keyed by the user's id: a user deleted and created again with the same name starts empty.
        var home = Path.Combine(dataDirectory, "homes", session.UserId.ToString());
        var account = await accounts.ForUserAsync(session.UserId, home, cancellationToken);
        UnixFiles.CreateDirectory(home, UnixFiles.OwnerOnly, account);
        var directory = Path.Combine(dataDirectory, "sessions", session.SessionId);
        UnixFiles.CreateDirectory(directory, UnixFiles.PassThrough);
        var log = Path.Combine(directory, "session.log");
        await UnixFiles.WriteAsync(log, ReadOnlyMemory<byte>.Empty, UnixFiles.OwnerReadWrite, owner: null, cancellationToken);

        // A free port can be taken by someone else before Xvnc binds it, so a start that dies at once is tried again.
        const int attempts = 3;
        for (var attempt = 1; ; attempt++)
        {
            var record = new LocalSessionRecord
            {
                SessionId = session.SessionId,
                Username = session.Username,
                Account = account,
                Template = template.Name,
                Home = home,
                Directory = directory,
                Display = LocalSessionProcess.FreeDisplay(sessions.Values.Select(s => s.Display)),
                VncPort = LocalSessionProcess.FreePort(),
                State = SessionState.Starting,
                IdleTimeoutSeconds = template.IdleTimeoutSeconds,
                MaxDurationSeconds = template.MaxDurationSeconds,
                Audio = template.Audio,
            };
            await WriteSessionSecretsAsync(record, account, cancellationToken);
            // A stopping agent starts nothing it could no longer report; the control plane re-sends the start to its
            // next connection, since no answer was given.
            agentStopping.ThrowIfCancellationRequested();
            Task<bool> ready;
            var accountLock = AccountLock(account);
            await accountLock.WaitAsync(CancellationToken.None);
            try
            {
                var started = await LocalSessionProcess.StartAsync(record, account, accounts.Isolated, template, log);
                record = record with { ProcessGroup = started.ProcessGroup, StartedAt = time.GetUtcNow() };
                if (agentStopping.IsCancellationRequested)
                {
                    // The agent began stopping while the processes started: its shutdown has listed the sessions already
                    // (or will not), so nobody else would ever stop these.
                    await LocalSessionProcess.StopAsync(record.ProcessGroup);
                    agentStopping.ThrowIfCancellationRequested();
                }

                // No await between the check above and this: a shutdown either saw this session or made us stop it.
                sessions[record.SessionId] = record;
                ready = started.Ready;
            }
            finally
            {
                accountLock.Release();
            }

            await SaveAsync();
            logger.LogInformation("Session {SessionId}: started Xvnc on :{Display} (port {Port}) for {User}, waiting for its RFB banner",
                record.SessionId, record.Display, record.VncPort, record.Username);

            var failure = await WaitUntilReadyAsync(record, ready, cancellationToken);
            if (failure is null)
            {
                return await MarkRunningAsync(record);
            }

            await LocalSessionProcess.StopAsync(record.ProcessGroup);
            await SweepAccountAsync(record);
            if (attempt < attempts && LocalSessionProcess.ExitedAtStart(failure))
            {
                logger.LogWarning("Session {SessionId}: start attempt {Attempt} failed ({Reason}); trying another display and port", record.SessionId, attempt, failure);
                continue;
            }

            sessions[record.SessionId] = record with { State = SessionState.Failed, FailureReason = failure };
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
        record = record with { State = SessionState.Running, FailureReason = null };
        sessions[record.SessionId] = record;
        StartClock(record);
        await SaveAsync();
        logger.LogInformation("Session {SessionId} started successfully", record.SessionId);
        return Report(record);
    }

    private async Task<ReportedSession> EndAsync(string sessionId, SessionState state, bool keepRecord) =>
        (await EndAsync(sessionId, state, keepRecord, onlyIfRunning: false))!;

    /// <summary>
    /// Ends the session; with <paramref name="onlyIfRunning"/> (a limit the clock reached), only if it is still running
    /// once the session's lock is held, so a crash, stop or hibernate that came first is not overwritten. Null when it was not.
    /// </summary>
    private Task<ReportedSession?> EndAsync(string sessionId, SessionState state, bool keepRecord, bool onlyIfRunning) =>
        WithLockAsync<ReportedSession?>(sessionId, async () =>
        {
            if (!sessions.TryGetValue(sessionId, out var record))
            {
                return onlyIfRunning ? null : new ReportedSession(sessionId, state);
            }

            if (onlyIfRunning && record.State != SessionState.Running)
            {
                return null;
            }

            // Marked first, so the process monitor does not report the processes we end as a crash.
            sessions[sessionId] = record with { State = state == SessionState.Stopped ? SessionState.Stopping : SessionState.Hibernating };
            clock.Forget(sessionId);
            await LocalSessionProcess.StopAsync(record.ProcessGroup);
            await SweepAccountAsync(record);
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
            logger.LogInformation("Session {SessionId} is {State}; its processes are gone", sessionId, state.ToName());
            return new ReportedSession(sessionId, state);
        });

    /// <summary>
    /// Writes what the session's account needs to start Xvnc (its password file, with the full and the view-only
    /// password, and X authority, in run/ of mode 0700) and the agent's own copy of the passwords, which the account cannot read.
    /// </summary>
    private static async Task WriteSessionSecretsAsync(LocalSessionRecord record, SessionAccount account, CancellationToken cancellationToken)
    {
        UnixFiles.CreateDirectory(record.RuntimeDirectory, UnixFiles.OwnerOnly, account);
        var password = VncPasswordFile.NewPassword();
        var viewOnly = VncPasswordFile.NewViewOnlyPassword(password);
        await UnixFiles.WriteAsync(record.AgentPasswordFile, password.Concat(viewOnly).ToArray(), UnixFiles.OwnerReadWrite, owner: null, cancellationToken);
        await UnixFiles.WriteAsync(record.PasswordFile, VncPasswordFile.Write(password, viewOnly), UnixFiles.OwnerReadWrite, account, cancellationToken);
        var cookie = RandomNumberGenerator.GetBytes(16);
        await UnixFiles.WriteAsync(record.XAuthorityFile, LocalSessionProcess.XAuthority(record.Display, cookie), UnixFiles.OwnerReadWrite, account, cancellationToken);
    }

    /// <summary>
    /// After a session's processes ended: when none of its account's sessions still runs, ends whatever else the
    /// account left running (a daemon that left the session's process group). Never for the agent's own account.
    /// </summary>
    private async Task SweepAccountAsync(LocalSessionRecord ended)
    {
        if (!accounts.Isolated || ended.Account is not { } account)
        {
            return;
        }

        var accountLock = AccountLock(account);
        await accountLock.WaitAsync(CancellationToken.None);
        try
        {
            if (!sessions.Values.Any(other => other.SessionId != ended.SessionId && other.Account?.Uid == account.Uid && LocalSessionProcess.IsAlive(other.ProcessGroup)))
            {
                await LocalSessionProcess.KillAccountProcessesAsync(account);
            }
        }
        finally
        {
            accountLock.Release();
        }
    }

    /// <summary>Once a second: reports sessions whose processes died on their own as failed.</summary>
    private async Task CheckProcessesAsync()
    {
        foreach (var record in sessions.Values.Where(r => r.State == SessionState.Running && !LocalSessionProcess.IsAlive(r.ProcessGroup)))
        {
            var failed = record with { State = SessionState.Failed, FailureReason = "the session's processes exited" };
            if (sessions.TryUpdate(record.SessionId, failed, record))
            {
                clock.Forget(record.SessionId);
                logger.LogWarning("Session {SessionId}: its processes exited unexpectedly", record.SessionId);
                await SaveAsync();
                SessionChanged?.Invoke(Report(failed));
            }
        }
    }

    /// <summary>Hibernates a session no viewer has sent input to for its idle timeout; stops one past its maximum duration.</summary>
    private async Task EnforceAsync(SessionLimitReached reached)
    {
        if (!sessions.TryGetValue(reached.SessionId, out var record) || record.State != SessionState.Running)
        {
            clock.Forget(reached.SessionId);
            return;
        }

        if (reached.Limit == SessionLimit.IdleTimeout)
        {
            logger.LogInformation("Session {SessionId}: no input for {Idle:0}s; hibernating it", record.SessionId, reached.Elapsed.TotalSeconds);
            if (await EndAsync(record.SessionId, SessionState.Hibernated, keepRecord: true, onlyIfRunning: true) is { } hibernated)
            {
                SessionChanged?.Invoke(hibernated);
            }
        }
        else if (reached.Limit == SessionLimit.MaxDuration)
        {
            logger.LogInformation("Session {SessionId}: reached its maximum duration; stopping it", record.SessionId);
            if (await EndAsync(record.SessionId, SessionState.Stopped, keepRecord: false, onlyIfRunning: true) is { } stopped)
            {
                SessionChanged?.Invoke(stopped);
            }
        }
    }

    /// <summary>The running session's limits: its maximum duration counts from when its processes started.</summary>
    private void StartClock(LocalSessionRecord record) =>
        clock.Running(record.SessionId,
            record.IdleTimeoutSeconds > 0 ? TimeSpan.FromSeconds(record.IdleTimeoutSeconds) : null,
            record.MaxDurationSeconds is { } max and > 0 ? TimeSpan.FromSeconds(max) : null,
            record.StartedAt);

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
            var recovered = record.State == SessionState.Running && !LocalSessionProcess.IsAlive(record.ProcessGroup)
                ? record with { State = SessionState.Failed, FailureReason = "the session's processes were gone when the agent restarted" }
                : record;
            sessions[record.SessionId] = recovered;
            if (recovered.State == SessionState.Running)
            {
                StartClock(recovered);
            }

            logger.LogInformation("Recovered session {SessionId}: {State}", record.SessionId, recovered.State.ToName());
        }
    }

    private async Task SaveAsync()
    {
        await stateFileLock.WaitAsync();
        try
        {
            var temporary = stateFile + ".tmp";
            await UnixFiles.WriteAsync(temporary, JsonSerializer.SerializeToUtf8Bytes(sessions.Values.ToList()), UnixFiles.OwnerReadWrite, owner: null, CancellationToken.None);
            File.Move(temporary, stateFile, overwrite: true);
        }
        finally
        {
            stateFileLock.Release();
        }
    }

    private async Task<T> WithLockAsync<T>(string sessionId, Func<Task<T>> action)
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

    public void Dispose()
    {
        monitor?.Dispose();
        clock.Dispose();
    }
}
