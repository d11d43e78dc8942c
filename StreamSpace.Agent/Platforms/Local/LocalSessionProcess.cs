using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using StreamSpace.Contracts;

namespace StreamSpace.Agent.Platforms.Local;

/// <summary>
/// The processes of one local session: TigerVNC's Xvnc on a free loopback port, a window manager and the
/// template's command, all in one new process group so that stopping the group leaves nothing behind.
/// </summary>
public static class LocalSessionProcess
{
    private const int SIGTERM = 15;
    private const int SIGKILL = 9;

    [DllImport("libc.so.6", SetLastError = true)]
    private static extern int kill(int pid, int signal);

    /// <summary>
    /// An X authority file with one MIT-MAGIC-COOKIE-1 entry for any host and the given display, in libXau's format
    /// (each field a big-endian length and its bytes). Xvnc (-auth) admits only clients that present the cookie.
    /// </summary>
    public static byte[] XAuthority(int display, byte[] cookie)
    {
        const ushort familyWild = 0xFFFF;
        using var buffer = new MemoryStream();
        void Field(ReadOnlySpan<byte> value)
        {
            buffer.WriteByte((byte)(value.Length >> 8));
            buffer.WriteByte((byte)value.Length);
            buffer.Write(value);
        }

        buffer.WriteByte(familyWild >> 8);
        buffer.WriteByte(familyWild & 0xFF);
        Field([]);
        Field(Encoding.ASCII.GetBytes(display.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        Field("MIT-MAGIC-COOKIE-1"u8);
        Field(cookie);
        return buffer.ToArray();
    }

    /// <summary>What PULSE_SERVER names for the session's sound server.</summary>
    public static string SoundServerAddress(string socket) => "unix:" + socket;

    private const string SoundLatencyMilliseconds = "60";

    /// <summary>The sink the session's programs play into; its monitor is what a listener hears.</summary>
    public const string SoundSink = "session";

    /// <summary>The session's process group (its id is the leader's pid), and whether its X server came up.</summary>
    public sealed record Started(int ProcessGroup, Task<bool> Ready);

    /// <summary>
    /// Everything a session's programs see in their environment, built from nothing: the allowlisted variables and
    /// the template's env. No setting of the agent's (its key above all) reaches a session.
    /// </summary>
    public static Dictionary<string, string> SessionEnvironment(LocalSessionRecord record, SessionAccount account, IReadOnlyDictionary<string, string> templateEnv)
    {
        var environment = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["PATH"] = "/usr/local/bin:/usr/bin:/bin:/usr/games",
            ["LANG"] = "C.UTF-8",
            ["SHELL"] = "/bin/bash",
        };
        foreach (var (key, value) in templateEnv)
        {
            environment[key] = value;
        }

        // What the platform owns wins over the template: the session's identity, home and display.
        environment["HOME"] = record.Home;
        environment["USER"] = account.Name;
        environment["LOGNAME"] = account.Name;
        environment["DISPLAY"] = ":" + record.Display.ToString(System.Globalization.CultureInfo.InvariantCulture);
        environment["XAUTHORITY"] = record.XAuthorityFile;
        if (record.Audio)
        {
            environment["PULSE_SERVER"] = SoundServerAddress(record.SoundSocket);
            // Programs ask the null sink for this latency unless they choose their own: with PulseAudio's default (2 s)
            // the sink renders, and so a listener hears, in blocks of up to 2 s.
            environment.TryAdd("PULSE_LATENCY_MSEC", SoundLatencyMilliseconds);
        }
        else
        {
            // A template's PULSE_SERVER must not point a session without sound at someone else's server.
            environment.Remove("PULSE_SERVER");
        }

        return environment;
    }

    /// <summary>
    /// <paramref name="command"/> run as <paramref name="account"/> by root, with setpriv: the account's uid, gid and
    /// groups; no capabilities; no_new_privs, so no setuid program (su, sudo) can take it back up.
    /// </summary>
    public static string[] AsAccount(SessionAccount account, IEnumerable<string> command) =>
    [
        "setpriv", $"--reuid={account.Uid.ToString(CultureInfo.InvariantCulture)}", $"--regid={account.Gid.ToString(CultureInfo.InvariantCulture)}",
        "--init-groups", "--inh-caps=-all", "--no-new-privs", "--", .. command,
    ];

    /// <summary>
    /// Starts the session's process group as <paramref name="account"/>; <see cref="Started.Ready"/> completes once
    /// Xvnc accepts connections. With <paramref name="dropPrivileges"/> the agent (root) switches to the account
    /// with setpriv after opening the log, which the account itself cannot read.
    /// </summary>
    public static async Task<Started> StartAsync(LocalSessionRecord record, SessionAccount account, bool dropPrivileges,
        SessionTemplate template, string logFile)
    {
        var command = template.Command ?? throw new ArgumentException($"template '{template.Name}' has no command", nameof(template));
        // Runs as the agent: setsid has given it a process group of its own. It points stdout and stderr at the
        // session's log and keeps the agent's pipe as fd 3 for the ready signal, then becomes the session script.
        const string launcher = """
            exec 3>&1 >>"$1" 2>&1
            shift
            exec "$@"
            """;
        // Runs as the session's account. Xvnc writes its display number to -displayfd once it accepts connections (its
        // RFB listener opens before that); the script waits for that on a FIFO, tells the agent on fd 3, then starts
        // the window manager, which starts the template's program once it manages windows (--startup): a window mapped
        // while openbox is still starting can be lost, left unmapped and never shown. The program's command reaches it
        // in SS_PROGRAM, removed before the program runs. No polling, no sleep processes. When Xvnc exits the script
        // exits, and the group goes with it. A FIFO left by a start whose group was ended before it removed it (a
        // hibernate right after ready, on a busy machine) is removed first, or the wake's mkfifo would fail.
        // The 1280x800 geometry only lasts until the first viewer connects: the viewer asks for its own size with
        // SetDesktopSize, which Xvnc grants through RandR. The template's clipboard directions are Xvnc's own settings
        // (SendCutText: session to viewer; AcceptCutText: viewer to session), and -AllowOverride=desktop keeps every
        // client in the session (vncconfig -set SendCutText=1) from changing them back.
        // With sound, PulseAudio starts beside Xvnc (Xvnc does not wait for it) in the same group, from no system or
        // user config (-n): one socket in run/ (the account's alone, so anonymous clients, with no cookie, are the
        // account's programs) and a null sink (SoundSink) as the only, so default, output. Its runtime files stay in
        // run/pulse, out of the home; DISPLAY is hidden from it so it never tries to start a D-Bus daemon through X11.
        // No shared memory: its memfd blocks failed to reach clients here, and it falls back to the socket anyway; no
        // realtime scheduling (it would ask rtkit over the system bus, which sessions do not have).
        const string script = """
            display=$1 port=$2 password_file=$3 name=$4 command=$5 ready=$6 send_cut_text=$7 accept_cut_text=$8 sound=$9
            rm -f "$ready"; mkfifo -m 600 "$ready" || exit
            if [ -n "$sound" ]; then
                env -u DISPLAY -u PULSE_SERVER PULSE_RUNTIME_PATH="${sound%/*}" PULSE_STATE_PATH="${sound%/*}" \
                    pulseaudio -n --daemonize=no --use-pid-file=no --system=no --exit-idle-time=-1 --disallow-module-loading \
                    --realtime=no --high-priority=no --disable-shm=yes \
                    --log-target=stderr --log-level=error \
                    --load="module-native-protocol-unix socket=$sound auth-anonymous=1 auth-cookie-enabled=0" \
                    --load="module-null-sink sink_name=session rate=48000 channels=2" </dev/null 3>&- &
            fi
            Xvnc ":$display" -rfbport "$port" -localhost -SecurityTypes VncAuth -PasswordFile "$password_file" \
                -auth "$XAUTHORITY" -geometry 1280x800 -depth 24 -nolisten tcp -AlwaysShared -desktop "$name" \
                -SendCutText="$send_cut_text" -AcceptCutText="$accept_cut_text" -AllowOverride=desktop \
                -displayfd 4 4>"$ready" 3>&- &
            xvnc=$!
            if ! read -r _ <"$ready"; then wait $xvnc; exit; fi
            echo ready >&3
            exec 3>&-
            rm -f "$ready"
            SS_PROGRAM=$command openbox --startup 'bash -c "program=\$SS_PROGRAM; unset SS_PROGRAM; cd ~ && exec bash -c \"exec \$program\""' \
                >/dev/null 2>&1 &
            wait $xvnc
            """;
        string[] session =
        [
            "bash", "-c", script, "streamspace-session",
            record.Display.ToString(System.Globalization.CultureInfo.InvariantCulture),
            record.VncPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            record.PasswordFile, record.SessionId, command, Path.Combine(record.RuntimeDirectory, "xvnc-ready"),
            template.ClipboardToBrowser ? "1" : "0", template.ClipboardToSession ? "1" : "0",
            record.Audio ? record.SoundSocket : "",
        ];
        string[] asAccount = dropPrivileges ? AsAccount(account, session) : session;
        var start = new ProcessStartInfo("setsid", ["bash", "-c", launcher, "streamspace-launcher", logFile, .. asAccount])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = false,
            UseShellExecute = false,
            WorkingDirectory = record.RuntimeDirectory,
        };
        start.Environment.Clear();
        foreach (var (key, value) in SessionEnvironment(record, account, template.Env))
        {
            start.Environment[key] = value;
        }

        var process = Process.Start(start) ?? throw new InvalidOperationException("could not start the session's processes");
        // Read before the readiness task may dispose the Process: a fast ready line, or a busy machine's late wake-up
        // below, would otherwise meet a disposed object.
        var processGroup = process.Id;
        var signalled = ReadySignalAsync(process);

        // The group exists only once setsid has run in the child; until then a liveness check would see nothing. The
        // readiness task ending (ready, or the script gone) ends the wait too.
        for (var i = 0; i < 200 && !IsAlive(processGroup) && !signalled.IsCompleted; i++)
        {
            await Task.Delay(5);
        }

        return new Started(processGroup, signalled);
    }

    /// <summary>True once the script says Xvnc is ready; false when it ended without saying so (Xvnc failed to start).</summary>
    private static async Task<bool> ReadySignalAsync(Process process)
    {
        using (process)
        {
            return await process.StandardOutput.ReadLineAsync() == "ready";
        }
    }

    public const string ExitedAtStartReason = "the session's processes exited at start";

    public static bool ExitedAtStart(string failure) => failure.StartsWith(ExitedAtStartReason, StringComparison.Ordinal);

    public static bool IsAlive(int processGroup) => processGroup > 0 && kill(-processGroup, 0) == 0;

    /// <summary>
    /// Ends every process the account still runs, such as a daemon a session started in a process group of its own.
    /// Only for an account whose sessions have all ended.
    /// </summary>
    public static async Task KillAccountProcessesAsync(SessionAccount account)
    {
        using var pkill = Process.Start(new ProcessStartInfo("pkill", ["--signal", "KILL", "--uid", account.Uid.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
            ?? throw new InvalidOperationException("could not run pkill");
        await pkill.WaitForExitAsync();
    }

    /// <summary>Ends the whole group: TERM, then KILL whatever is left after a grace period.</summary>
    public static async Task StopAsync(int processGroup)
    {
        if (!IsAlive(processGroup))
        {
            return;
        }

        kill(-processGroup, SIGTERM);
        for (var i = 0; i < 40 && IsAlive(processGroup); i++)
        {
            await Task.Delay(50);
        }

        if (IsAlive(processGroup))
        {
            kill(-processGroup, SIGKILL);
            for (var i = 0; i < 40 && IsAlive(processGroup); i++)
            {
                await Task.Delay(25);
            }
        }
    }

    /// <summary>True once the port answers with an RFB protocol banner.</summary>
    public static async Task<bool> AnswersRfbAsync(int port, CancellationToken cancellationToken)
    {
        // Connecting to a loopback port nobody listens on yet can connect the socket to itself (TCP simultaneous
        // open), which would then hold the port Xvnc is about to bind. So only connect once something listens.
        if (!IsListening(port))
        {
            return false;
        }

        try
        {
            using var client = new TcpClient();
            await client.ConnectAsync(IPAddress.Loopback, port, cancellationToken);
            var banner = new byte[12];
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(2));
            await client.GetStream().ReadExactlyAsync(banner, timeout.Token);
            return System.Text.Encoding.ASCII.GetString(banner).StartsWith("RFB ", StringComparison.Ordinal);
        }
        catch (Exception e) when (e is SocketException or IOException or OperationCanceledException)
        {
            return false;
        }
    }

    private static bool IsListening(int port)
    {
        const string listenState = "0A";
        var hexPort = port.ToString("X4", System.Globalization.CultureInfo.InvariantCulture);
        return File.ReadLines("/proc/net/tcp").Skip(1)
            .Select(line => line.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Any(fields => fields.Length > 3 && fields[1].EndsWith(":" + hexPort, StringComparison.Ordinal) && fields[3] == listenState);
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>
    /// An X display number nobody uses: no live X server holds its lock file. The search starts at a random display, so
    /// several agents on one machine rarely race for the same free number.
    /// </summary>
    public static int FreeDisplay(IEnumerable<int> taken)
    {
        const int first = 20, count = 980;
        var used = taken.ToHashSet();
        var start = Random.Shared.Next(count);
        for (var i = 0; i < count; i++)
        {
            var display = first + (start + i) % count;
            if (!used.Contains(display) && IsDisplayFree(display))
            {
                return display;
            }
        }

        throw new InvalidOperationException($"no free X display between :{first} and :{first + count - 1}");
    }

    /// <summary>
    /// True when no X server holds <paramref name="display"/>: no lock file and no socket. An X server that was killed
    /// (SIGKILL, a crash) leaves both behind, and its lock names its process: when that process is gone, the stale
    /// files are removed here so the display can be used again. In /tmp's sticky folders only their owner (or root)
    /// may remove them; until someone can, the display stays taken, since an X server could not listen there either.
    /// </summary>
    public static bool IsDisplayFree(int display)
    {
        string lockFile = $"/tmp/.X{display}-lock", socket = $"/tmp/.X11-unix/X{display}";
        if (File.Exists(lockFile) && HoldsDeadProcess(lockFile))
        {
            TryDelete(socket);
            TryDelete(lockFile);
        }

        return !File.Exists(lockFile) && !File.Exists(socket);
    }

    private static bool HoldsDeadProcess(string lockFile)
    {
        try
        {
            return int.TryParse(File.ReadAllText(lockFile).Trim(), out var pid) && pid > 0 && !Directory.Exists($"/proc/{pid}");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Another user's file in a sticky folder: the display stays taken.
        }
    }
}
