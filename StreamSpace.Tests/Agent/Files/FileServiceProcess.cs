using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using StreamSpace.Contracts;
using StreamSpace.Contracts.Tunnel;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Agent.Files;

/// <summary>
/// The file service as a session pod runs it: the built agent with <c>files-serve</c>, as the session's user (uid 1000
/// when the tests run as root, as in the pod; else this account), its key in a file as the Secret mounts it, serving a
/// home of its own on the pod's "IP" (a loopback address).
/// </summary>
public sealed class FileServiceProcess : IAsyncDisposable
{
    public const int SessionUid = 1000;

    private readonly Process process;
    private readonly StringBuilder log = new();
    private readonly string directory;

    private FileServiceProcess(Process process, string directory, string address, int port, byte[] key)
    {
        this.process = process;
        this.directory = directory;
        Address = address;
        Port = port;
        Key = key;
        process.OutputDataReceived += (_, e) => Append(e.Data);
        process.ErrorDataReceived += (_, e) => Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public string Address { get; }

    public int Port { get; }

    public byte[] Key { get; }

    public string Home => Path.Combine(directory, "home");

    /// <summary>The uid the service runs as, and so the owner of what it writes.</summary>
    public static int Uid => Environment.IsPrivilegedProcess ? SessionUid : StreamSpace.Agent.Platforms.Local.UnixFiles.EffectiveUid();

    public string Log
    {
        get
        {
            lock (log)
            {
                return log.ToString();
            }
        }
    }

    /// <summary>Starts the service with <paramref name="key"/> (a new random one when null) and waits until it accepts connections.</summary>
    /// <param name="soundSocket">The pod's PulseAudio socket (STREAMSPACE_SOUND_SOCKET, as session.sh sets it); null: no sound.</param>
    public static async Task<FileServiceProcess> StartAsync(string address, int port, byte[]? key = null, string sessionId = "files-test", string? soundSocket = null)
    {
        key ??= RandomNumberGenerator.GetBytes(FileStreams.FilesKeyBytes);
        var directory = Directory.CreateTempSubdirectory("streamspace-files-pod-").FullName;
        File.SetUnixFileMode(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.OtherExecute);
        var home = Directory.CreateDirectory(Path.Combine(directory, "home")).FullName;
        var keyFile = Path.Combine(directory, "files-key");
        await File.WriteAllBytesAsync(keyFile, key);
        File.SetUnixFileMode(keyFile, UnixFileMode.UserRead);
        if (Environment.IsPrivilegedProcess)
        {
            await ProcessRunner.RunCheckedAsync("chown", $"{SessionUid}:{SessionUid}", home, keyFile);
        }

        var start = new ProcessStartInfo(Environment.IsPrivilegedProcess ? "setpriv" : "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        if (Environment.IsPrivilegedProcess)
        {
            foreach (var argument in new[] { $"--reuid={SessionUid}", $"--regid={SessionUid}", "--clear-groups", "--", "dotnet" })
            {
                start.ArgumentList.Add(argument);
            }
        }

        start.ArgumentList.Add(Repository.BuiltAssembly("StreamSpace.Agent"));
        start.ArgumentList.Add("files-serve");
        // As the pod's environment has it (SessionObjects): the key's file, never the key.
        start.Environment["HOME"] = home;
        start.Environment["STREAMSPACE_FILES_KEY_FILE"] = keyFile;
        start.Environment["STREAMSPACE_FILES_ADDRESS"] = address;
        start.Environment["STREAMSPACE_FILES_PORT"] = port.ToString(CultureInfo.InvariantCulture);
        start.Environment["STREAMSPACE_SESSION_ID"] = sessionId;
        if (soundSocket is not null)
        {
            start.Environment["STREAMSPACE_SOUND_SOCKET"] = soundSocket;
        }

        var service = new FileServiceProcess(Process.Start(start) ?? throw new InvalidOperationException("dotnet did not start"), directory, address, port, key);
        try
        {
            await Eventually.TrueAsync(async () =>
            {
                if (service.process.HasExited)
                {
                    throw new InvalidOperationException($"files-serve exited with {service.process.ExitCode}: {service.Log}");
                }

                try
                {
                    using var tcp = new TcpClient();
                    await tcp.ConnectAsync(address, port);
                    return true;
                }
                catch (SocketException)
                {
                    return false;
                }
            }, TimeSpan.FromSeconds(20), $"files-serve on {address}:{port}");
        }
        catch
        {
            await service.DisposeAsync();
            throw;
        }

        return service;
    }

    /// <summary>A connection to the service that proved <paramref name="key"/> (the service's own when null) and asked for one operation.</summary>
    public async Task<NetworkStream> RequestAsync(string purpose, string? name, byte[]? key = null)
    {
        var tcp = new TcpClient();
        await tcp.ConnectAsync(Address, Port);
        var stream = tcp.GetStream();
        await FileStreams.WriteFrameAsync(stream, key ?? Key, CancellationToken.None);
        await FileStreams.WriteFrameAsync(stream, JsonSerializer.SerializeToUtf8Bytes(new FileStreamRequest(purpose, name), AgentProtocol.Json), CancellationToken.None);
        return stream;
    }

    /// <summary>Runs <paramref name="command"/> with sh as the service's user in its home, as a program in the session would.</summary>
    public async Task AsSessionUserAsync(string command)
    {
        var result = Environment.IsPrivilegedProcess
            ? await ProcessRunner.RunAsync("setpriv", [$"--reuid={SessionUid}", $"--regid={SessionUid}", "--clear-groups", "--", "sh", "-c", command], new Dictionary<string, string> { ["HOME"] = Home })
            : await ProcessRunner.RunAsync("sh", ["-c", command], new Dictionary<string, string> { ["HOME"] = Home });
        Assert.True(result.ExitCode == 0, $"{command}: {result.StandardError}");
    }

    public async ValueTask DisposeAsync()
    {
        if (!process.HasExited)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }

        process.Dispose();
        Directory.Delete(directory, recursive: true);
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (log)
        {
            log.AppendLine(line);
        }
    }
}
