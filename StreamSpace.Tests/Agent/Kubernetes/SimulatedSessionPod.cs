using System.Diagnostics;
using System.Net.Sockets;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Agent.Kubernetes;

/// <summary>
/// What the session image runs, standing in for a pod: a real Xvnc with VNC authentication, its password file taken from
/// the session's Secret, listening on the pod's "IP" — a loopback address of its own — at the container port.
/// </summary>
public sealed class SimulatedSessionPod : IAsyncDisposable
{
    private readonly Process xvnc;
    private readonly string directory;

    private SimulatedSessionPod(Process xvnc, string directory)
    {
        this.xvnc = xvnc;
        this.directory = directory;
    }

    /// <summary>Xvnc with a text password, written to its password file by vncpasswd as a person would.</summary>
    public static async Task<SimulatedSessionPod> StartAsync(string podIp, int port, string password, string desktopName) =>
        await StartAsync(podIp, port, await VncPasswdAsync(password), desktopName);

    /// <summary>Xvnc with the password file as it is in the session's Secret, mounted where VNC_PASSWORD_FILE points.</summary>
    public static async Task<SimulatedSessionPod> StartAsync(string podIp, int port, byte[] passwordFileContent, string desktopName)
    {
        var directory = Directory.CreateTempSubdirectory("streamspace-pod-").FullName;
        var passwordFile = Path.Combine(directory, "vncpasswd");
        await File.WriteAllBytesAsync(passwordFile, passwordFileContent);

        var display = Enumerable.Range(400 + Random.Shared.Next(200), 400).First(StreamSpace.Agent.Platforms.Local.LocalSessionProcess.IsDisplayFree);
        var start = new ProcessStartInfo("Xvnc",
        [
            $":{display}", "-interface", podIp, "-rfbport", port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "-SecurityTypes", "VncAuth", "-PasswordFile", passwordFile, "-geometry", "1280x800", "-depth", "24",
            "-nolisten", "tcp", "-AlwaysShared", "-desktop", desktopName,
        ])
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        };
        var process = Process.Start(start) ?? throw new InvalidOperationException("Xvnc did not start; install tigervnc-standalone-server");
        var log = new System.Text.StringBuilder();
        process.ErrorDataReceived += (_, e) => { lock (log) { log.AppendLine(e.Data); } };
        process.OutputDataReceived += (_, e) => { lock (log) { log.AppendLine(e.Data); } };
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        var pod = new SimulatedSessionPod(process, directory);
        try
        {
            await Eventually.TrueAsync(async () =>
            {
                if (process.HasExited)
                {
                    lock (log)
                    {
                        throw new InvalidOperationException($"Xvnc exited with {process.ExitCode}: {log}");
                    }
                }

                try
                {
                    using var tcp = new TcpClient();
                    await tcp.ConnectAsync(podIp, port);
                    return true;
                }
                catch (SocketException)
                {
                    return false;
                }
            }, TimeSpan.FromSeconds(10), $"Xvnc on {podIp}:{port}");
        }
        catch
        {
            await pod.DisposeAsync();
            throw;
        }

        return pod;
    }

    /// <summary>What <c>vncpasswd -f</c> writes for a password typed on its standard input.</summary>
    public static async Task<byte[]> VncPasswdAsync(string password)
    {
        using var vncpasswd = Process.Start(new ProcessStartInfo("vncpasswd", ["-f"]) { RedirectStandardInput = true, RedirectStandardOutput = true })
            ?? throw new InvalidOperationException("vncpasswd did not start; install tigervnc-tools");
        await vncpasswd.StandardInput.WriteLineAsync(password);
        vncpasswd.StandardInput.Close();
        using var output = new MemoryStream();
        await vncpasswd.StandardOutput.BaseStream.CopyToAsync(output);
        await vncpasswd.WaitForExitAsync();
        return output.ToArray();
    }

    public async ValueTask DisposeAsync()
    {
        if (!xvnc.HasExited)
        {
            // SIGTERM first: Xvnc then removes its lock file and socket, which a killed one leaves behind.
            await ProcessRunner.RunAsync("kill", ["-TERM", xvnc.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)], timeout: TimeSpan.FromSeconds(5));
            using var stopped = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            try
            {
                await xvnc.WaitForExitAsync(stopped.Token);
            }
            catch (OperationCanceledException)
            {
                xvnc.Kill(entireProcessTree: true);
                await xvnc.WaitForExitAsync();
            }
        }

        xvnc.Dispose();
        Directory.Delete(directory, recursive: true);
    }
}
