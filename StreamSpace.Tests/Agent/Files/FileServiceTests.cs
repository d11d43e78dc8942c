using System.Globalization;
using System.Security.Cryptography;
using StreamSpace.Contracts.Tunnel;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Agent.Files;

/// <summary>
/// The file service of a Kubernetes session pod (the agent's <c>files-serve</c>) as a real process running as the
/// session's user: it serves only the holder of the session's files key, with the local agent's confinement rules.
/// </summary>
public sealed class FileServiceTests : IAsyncLifetime
{
    private FileServiceProcess service = null!;

    public async Task InitializeAsync() => service = await FileServiceProcess.StartAsync(NextAddress(), 5990);

    public async Task DisposeAsync() => await service.DisposeAsync();

    [Fact]
    public async Task An_upload_with_the_key_lands_in_Uploads_as_the_sessions_user_and_a_taken_name_gets_a_suffix()
    {
        var content = RandomNumberGenerator.GetBytes(3 * 1024 * 1024 + 7);
        var first = await UploadAsync("report.pdf", content);
        Assert.Equal(new FileStreamReply(200, Name: "report.pdf", Size: content.Length), first);
        var second = await UploadAsync("report.pdf", "second"u8.ToArray());
        Assert.Equal("report (1).pdf", second.Name);

        var uploads = Path.Combine(service.Home, "Uploads");
        Assert.Equal(SHA256.HashData(content), SHA256.HashData(await File.ReadAllBytesAsync(Path.Combine(uploads, "report.pdf"))));
        Assert.Equal("second", await File.ReadAllTextAsync(Path.Combine(uploads, "report (1).pdf")));
        Assert.Equal(["report (1).pdf", "report.pdf"], Directory.GetFiles(uploads).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        var uid = FileServiceProcess.Uid.ToString(CultureInfo.InvariantCulture);
        Assert.Equal(uid, (await ProcessRunner.RunCheckedAsync("stat", "-c", "%u", uploads)).Trim());
        Assert.Equal(uid, (await ProcessRunner.RunCheckedAsync("stat", "-c", "%u", Path.Combine(uploads, "report.pdf"))).Trim());
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(uploads));
    }

    [Fact]
    public async Task A_file_the_session_saved_in_Downloads_is_listed_and_downloads_byte_for_byte()
    {
        await service.AsSessionUserAsync("mkdir -p \"$HOME/Downloads\" && head -c 1000003 /dev/urandom >\"$HOME/Downloads/photo é.raw\" && mkdir \"$HOME/Downloads/folder\"");
        var expected = await File.ReadAllBytesAsync(Path.Combine(service.Home, "Downloads", "photo é.raw"));

        await using (var list = await service.RequestAsync(FileStreams.ListDownloads, null))
        {
            var listed = await FileStreams.ReadReplyAsync(list, CancellationToken.None);
            Assert.Equal(200, listed.Status);
            var only = Assert.Single(listed.Files!);
            Assert.Equal(("photo é.raw", 1000003L), (only.Name, only.Size));
        }

        await using var download = await service.RequestAsync(FileStreams.Download, "photo é.raw");
        var reply = await FileStreams.ReadReplyAsync(download, CancellationToken.None);
        Assert.Equal((200, 1000003L), (reply.Status, reply.Size));
        var bytes = new byte[reply.Size!.Value];
        await download.ReadExactlyAsync(bytes);
        Assert.Equal(expected, bytes);
    }

    [Fact]
    public async Task A_wrong_key_is_refused_without_an_answer_and_nothing_is_written()
    {
        var wrong = (byte[])service.Key.Clone();
        wrong[^1] ^= 1;
        foreach (var key in new[] { wrong, service.Key[..16], Array.Empty<byte>() })
        {
            using var tcp = new System.Net.Sockets.TcpClient();
            await tcp.ConnectAsync(service.Address, service.Port);
            var stream = tcp.GetStream();
            try
            {
                // The rest of an upload after the key; the service may have closed already, which cuts these writes.
                await FileStreams.WriteFrameAsync(stream, key, CancellationToken.None);
                await FileStreams.WriteFrameAsync(stream, System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(
                    new FileStreamRequest(FileStreams.Upload, "planted.txt"), StreamSpace.Contracts.AgentProtocol.Json), CancellationToken.None);
                await FileStreams.WriteFrameAsync(stream, "planted"u8.ToArray(), CancellationToken.None);
            }
            catch (IOException)
            {
            }

            // The service closes the connection (a reset, when it had bytes left unread): no reply, no file.
            Assert.Equal(0, await ReadOrResetAsync(stream).WaitAsync(TimeSpan.FromSeconds(10)));
        }

        Assert.False(Directory.Exists(Path.Combine(service.Home, "Uploads")));
        Assert.Contains("did not prove the session's files key", service.Log);
    }

    [Fact]
    public async Task Names_that_leave_the_folder_and_symlinks_out_of_it_are_refused()
    {
        foreach (var name in new[] { "../x", "a/b", "..", "bad\u0001name", new string('n', 256) })
        {
            await using var stream = await service.RequestAsync(FileStreams.Upload, name);
            Assert.Equal(400, (await FileStreams.ReadReplyAsync(stream, CancellationToken.None)).Status);
        }

        Assert.False(File.Exists(Path.Combine(service.Home, "x")));

        await service.AsSessionUserAsync("mkdir -p \"$HOME/Downloads\" && ln -s /etc/passwd \"$HOME/Downloads/passwd\"");
        await using (var link = await service.RequestAsync(FileStreams.Download, "passwd"))
        {
            var refused = await FileStreams.ReadReplyAsync(link, CancellationToken.None);
            Assert.Equal(403, refused.Status);
            Assert.Contains("symbolic link", refused.Error);
        }

        var outside = Directory.CreateTempSubdirectory("streamspace-outside-").FullName;
        File.SetUnixFileMode(outside, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute);
        try
        {
            await service.AsSessionUserAsync($"ln -s {outside} \"$HOME/Uploads\"");
            await using var intoLink = await service.RequestAsync(FileStreams.Upload, "planted.txt");
            var refused = await FileStreams.ReadReplyAsync(intoLink, CancellationToken.None);
            Assert.Equal(409, refused.Status);
            Assert.Contains("Uploads", refused.Error);
            Assert.Empty(Directory.GetFileSystemEntries(outside));
        }
        finally
        {
            Directory.Delete(outside, recursive: true);
        }
    }

    [Fact]
    public async Task Without_its_key_file_the_service_stops_at_start_naming_the_setting()
    {
        var result = await ProcessRunner.RunAsync("dotnet", [Repository.BuiltAssembly("StreamSpace.Agent"), "files-serve"],
            new Dictionary<string, string> { ["STREAMSPACE_FILES_KEY_FILE"] = "/nonexistent/files-key" });
        StartupErrors.AssertOneLine(result, "STREAMSPACE_FILES_KEY_FILE");
    }

    /// <summary>The bytes a read returns, or 0 when the connection was reset.</summary>
    private static async Task<int> ReadOrResetAsync(Stream stream)
    {
        try
        {
            return await stream.ReadAsync(new byte[1]);
        }
        catch (IOException)
        {
            return 0;
        }
    }

    private async Task<FileStreamReply> UploadAsync(string name, byte[] content)
    {
        await using var stream = await service.RequestAsync(FileStreams.Upload, name);
        Assert.Equal(200, (await FileStreams.ReadReplyAsync(stream, CancellationToken.None)).Status);
        for (var offset = 0; offset < content.Length; offset += 65536)
        {
            await FileStreams.WriteFrameAsync(stream, content.AsMemory(offset, Math.Min(65536, content.Length - offset)), CancellationToken.None);
        }

        await FileStreams.WriteFrameAsync(stream, ReadOnlyMemory<byte>.Empty, CancellationToken.None);
        return await FileStreams.ReadReplyAsync(stream, CancellationToken.None);
    }

    private static int lastAddress;

    /// <summary>A loopback address of its own per service, as each pod has its IP.</summary>
    private static string NextAddress() => $"127.0.{Environment.ProcessId % 200 + 30}.{Interlocked.Increment(ref lastAddress) % 250 + 2}";
}
