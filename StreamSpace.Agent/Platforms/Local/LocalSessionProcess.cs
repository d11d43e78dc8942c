using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using StreamSpace.Agent.Tunnel;

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

    [DllImport("libc.so.6", SetLastError = true)]
    private static extern int mkfifo(string path, uint mode);

    /// <summary>
    /// Writes a random VNC password (VNC auth uses at most 8 characters) in TigerVNC's file format, the way
    /// <c>vncpasswd -f</c> does, without spawning it: several starts at once then cost no extra processes.
    /// </summary>
    public static async Task<string> CreatePasswordFileAsync(string directory, CancellationToken cancellationToken)
    {
        var password = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
        await WriteOwnerOnlyAsync(Path.Combine(directory, "vncpasswd"), ObfuscatedPassword(password), cancellationToken);
        await WriteOwnerOnlyAsync(Path.Combine(directory, "password"), Encoding.ASCII.GetBytes(password), cancellationToken);
        return password;
    }

    // TigerVNC (like every VNC since RealVNC) stores the password DES-encrypted under this fixed, public key, with the
    // same bit order as the challenge answer: it hides the password from a casual glance, nothing more.
    private static readonly byte[] PasswordFileKey = [23, 82, 107, 6, 35, 78, 88, 7];

    /// <summary>The 8 bytes <c>vncpasswd -f</c> writes for <paramref name="password"/>.</summary>
    public static byte[] ObfuscatedPassword(string password)
    {
        var block = new byte[8];
        Encoding.Latin1.GetBytes(password.AsSpan(0, Math.Min(8, password.Length)), block);
        return RfbBridge.EncryptChallenge(block, Encoding.Latin1.GetString(PasswordFileKey));
    }

    private static async Task WriteOwnerOnlyAsync(string path, byte[] content, CancellationToken cancellationToken)
    {
        var options = new FileStreamOptions
        {
            Mode = FileMode.Create,
            Access = FileAccess.Write,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        };
        await using var file = new FileStream(path, options);
        await file.WriteAsync(content, cancellationToken);
    }

    /// <summary>The session's process group (its id is the leader's pid), and whether its X server came up.</summary>
    public sealed record Started(int ProcessGroup, Task<bool> Ready);

    /// <summary>Starts the session's process group; <see cref="Started.Ready"/> completes once Xvnc accepts connections.</summary>
    public static async Task<Started> StartAsync(LocalSessionRecord record, string command, IReadOnlyDictionary<string, string> env, string logFile)
    {
        // setsid gives the session its own process group. Xvnc writes its display number to -displayfd once it accepts
        // connections (its RFB listener opens before that); the script waits for that on a FIFO, tells the agent on
        // fd 3 (the agent's stdout pipe), then starts the window manager and the template's program. No polling, no
        // sleep processes. When Xvnc exits the script exits, and the group goes with it.
        const string script = """
            exec 3>&1 >>"$SS_LOG" 2>&1
            Xvnc ":$SS_DISPLAY" -rfbport "$SS_PORT" -localhost -SecurityTypes VncAuth -PasswordFile "$SS_PASSWORD_FILE" \
                 -geometry "$SS_GEOMETRY" -depth 24 -nolisten tcp -AlwaysShared -desktop "$SS_NAME" \
                 -displayfd 4 4>"$SS_READY" 3>&- &
            xvnc=$!
            if ! read -r _ <"$SS_READY"; then wait $xvnc; exit; fi
            echo ready >&3
            exec 3>&-
            rm -f "$SS_READY"
            export DISPLAY=":$SS_DISPLAY"
            (openbox >/dev/null 2>&1 &)
            (cd "$HOME" && exec bash -c "$SS_COMMAND") &
            wait $xvnc
            """;
        var ready = Path.Combine(record.Directory, "xvnc-ready");
        File.Delete(ready);
        if (mkfifo(ready, Convert.ToUInt32("600", 8)) != 0)
        {
            throw new InvalidOperationException($"could not create {ready}: errno {Marshal.GetLastPInvokeError()}");
        }

        var start = new ProcessStartInfo("setsid", ["bash", "-c", script])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = false,
            UseShellExecute = false,
            WorkingDirectory = record.Home,
        };
        start.Environment["HOME"] = record.Home;
        start.Environment["USER"] = record.Username;
        start.Environment["SS_DISPLAY"] = record.Display.ToString(System.Globalization.CultureInfo.InvariantCulture);
        start.Environment["SS_PORT"] = record.VncPort.ToString(System.Globalization.CultureInfo.InvariantCulture);
        start.Environment["SS_PASSWORD_FILE"] = record.PasswordFile;
        start.Environment["SS_GEOMETRY"] = "1280x800";
        start.Environment["SS_NAME"] = record.SessionId;
        start.Environment["SS_COMMAND"] = $"exec {command}";
        start.Environment["SS_LOG"] = logFile;
        start.Environment["SS_READY"] = ready;
        foreach (var (key, value) in env)
        {
            start.Environment[key] = value;
        }

        var process = Process.Start(start) ?? throw new InvalidOperationException("could not start the session's processes");
        var signalled = ReadySignalAsync(process);

        // The group exists only once setsid has run in the child; until then a liveness check would see nothing.
        for (var i = 0; i < 200 && !IsAlive(process.Id) && !process.HasExited; i++)
        {
            await Task.Delay(5);
        }

        return new Started(process.Id, signalled);
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
    /// An X display number nobody uses: no socket and no lock file. The search starts at a random display, so
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
            if (!used.Contains(display) && !File.Exists($"/tmp/.X11-unix/X{display}") && !File.Exists($"/tmp/.X{display}-lock"))
            {
                return display;
            }
        }

        throw new InvalidOperationException($"no free X display between :{first} and :{first + count - 1}");
    }
}
