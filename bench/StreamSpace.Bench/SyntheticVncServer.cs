using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace StreamSpace.Bench;

/// <summary>
/// The tunnel section's stand-in for a VNC server. It runs as a session's "Xvnc" (a bench template puts a script of
/// that name first on the session's PATH), so path (c) is a real session launched through the API, and the agent
/// dials it, authenticates and relays exactly as it does for TigerVNC. It plays only the part of RFB the agent
/// speaks: the version banner and VNC authentication (any response is accepted: the bench does not test DES), then
/// it takes one command byte from the client instead of ClientInit:
/// <list type="bullet">
/// <item><c>S</c> + int64 n: send n bytes as fast as the path takes them.</item>
/// <item><c>P</c> + int32 bytes per second + int64 n: send n bytes paced at that rate.</item>
/// <item><c>E</c>: echo every byte back (the 64-byte input round trips).</item>
/// </list>
/// </summary>
public static class SyntheticVncServer
{
    public const byte Stream = (byte)'S';
    public const byte Paced = (byte)'P';
    public const byte Echo = (byte)'E';

    /// <summary>
    /// Entry point when the bench runs as <c>--synthetic-vnc [ADDRESS:]PORT [DISPLAY FD]</c> (from the fake Xvnc script). Like
    /// Xvnc with <c>-displayfd</c>, it writes its display number to that descriptor once it accepts connections.
    /// </summary>
    public static async Task<int> RunAsync(string[] arguments)
    {
        // PORT on the loopback address, or ADDRESS:PORT (a Kubernetes row's pod IP).
        var listener = arguments[0].Split(':') is [var address, var port]
            ? new TcpListener(IPAddress.Parse(address), int.Parse(port, CultureInfo.InvariantCulture))
            : new TcpListener(IPAddress.Loopback, int.Parse(arguments[0], CultureInfo.InvariantCulture));
        listener.Start(512);
        if (arguments is [_, var display, var readyFd])
        {
            await File.WriteAllTextAsync($"/proc/self/fd/{readyFd}", display + "\n");
        }

        while (true)
        {
            var client = await listener.AcceptTcpClientAsync();
            _ = Task.Run(() => ServeAsync(client));
        }
    }

    /// <summary>Writes the fake Xvnc into a folder; a template whose PATH starts with that folder runs this server.</summary>
    public static string WriteXvncScript(string folder)
    {
        Directory.CreateDirectory(folder);
        var script = Path.Combine(folder, "Xvnc");
        // A private copy of the bench's build, so a rebuild of the bench while a run is under way cannot break the server.
        var copy = Path.Combine(folder, "bin");
        foreach (var file in Directory.EnumerateFiles(AppContext.BaseDirectory, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(copy, Path.GetRelativePath(AppContext.BaseDirectory, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target, overwrite: true);
        }

        var dll = Path.Combine(copy, Path.GetFileName(typeof(SyntheticVncServer).Assembly.Location));
        File.WriteAllText(script, $$"""
            #!/bin/sh
            # Stands in for Xvnc in the bench: serves the synthetic RFB server on Xvnc's -rfbport and, like Xvnc,
            # writes its display number to -displayfd once it accepts connections.
            while [ $# -gt 0 ]; do
              case "$1" in
                :*) display="${1#:}" ;;
                -rfbport) port="$2"; shift ;;
                -displayfd) fd="$2"; shift ;;
              esac
              shift
            done
            exec dotnet "{{dll}}" --synthetic-vnc "$port" ${fd:+"$display" "$fd"}
            """ + "\n");
        File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        return folder;
    }

    private static async Task ServeAsync(TcpClient client)
    {
        using var _ = client;
        client.NoDelay = true;
        var stream = client.GetStream();
        try
        {
            await stream.WriteAsync("RFB 003.008\n"u8.ToArray());
            await stream.ReadExactlyAsync(new byte[12]);
            await stream.WriteAsync(new byte[] { 1, 2 }); // one security type: VNC authentication
            await stream.ReadExactlyAsync(new byte[1]);
            await stream.WriteAsync(new byte[16]); // the challenge
            await stream.ReadExactlyAsync(new byte[16]);
            await stream.WriteAsync(new byte[4]); // SecurityResult: OK

            var command = new byte[1];
            await stream.ReadExactlyAsync(command);
            switch (command[0])
            {
                case Stream:
                    var count = new byte[8];
                    await stream.ReadExactlyAsync(count);
                    await SendAsync(stream, BinaryPrimitives.ReadInt64BigEndian(count), bytesPerSecond: 0);
                    break;
                case Paced:
                    var arguments = new byte[12];
                    await stream.ReadExactlyAsync(arguments);
                    await SendAsync(stream, BinaryPrimitives.ReadInt64BigEndian(arguments.AsSpan(4)), BinaryPrimitives.ReadInt32BigEndian(arguments));
                    break;
                case Echo:
                    var buffer = new byte[64 * 1024];
                    int read;
                    while ((read = await stream.ReadAsync(buffer)) > 0)
                    {
                        await stream.WriteAsync(buffer.AsMemory(0, read));
                    }

                    break;
            }

            // Wait for the client to hang up, so the last bytes are not cut off by a reset.
            while (await stream.ReadAsync(new byte[1]) > 0)
            {
            }
        }
        catch (Exception e) when (e is IOException or SocketException or EndOfStreamException)
        {
            // The client or the agent's readiness probe hung up.
        }
    }

    /// <summary>
    /// A paced stream's frame interval: a busy session at 25 frames a second. Each frame's bytes go out in one write, so
    /// the path relays them in a few large pieces, as it does a VNC server's framebuffer updates; 10 ms slices made every
    /// relay (and the receivers) pay 4 times the per-message overhead a real session costs.
    /// </summary>
    public static readonly TimeSpan FrameInterval = TimeSpan.FromMilliseconds(40);

    /// <summary>Sends count bytes; with a rate, one frame's worth every <see cref="FrameInterval"/>, catching up when a frame ran late.</summary>
    private static async Task SendAsync(NetworkStream stream, long count, int bytesPerSecond)
    {
        var block = new byte[256 * 1024];
        Random.Shared.NextBytes(block);
        var frame = (long)(bytesPerSecond * FrameInterval.TotalSeconds);
        var clock = Stopwatch.StartNew();
        long sent = 0;
        while (sent < count)
        {
            var allowed = bytesPerSecond == 0 ? count : Math.Min(count, (long)(clock.Elapsed.TotalSeconds * bytesPerSecond) + frame);
            var next = Math.Min(frame, count - sent);
            if (bytesPerSecond > 0 && allowed - sent < next)
            {
                // Until a whole frame is due. Sending whatever the allowance grew by meanwhile would trickle out a few
                // hundred bytes per write, and every relay would pay its per-message cost for each.
                var due = TimeSpan.FromSeconds((double)(sent + next - frame) / bytesPerSecond) - clock.Elapsed;
                await Task.Delay(due > TimeSpan.FromMilliseconds(1) ? due : TimeSpan.FromMilliseconds(1));
                continue;
            }

            var n = (int)Math.Min(block.Length, allowed - sent);
            await stream.WriteAsync(block.AsMemory(0, n));
            sent += n;
        }
    }
}
