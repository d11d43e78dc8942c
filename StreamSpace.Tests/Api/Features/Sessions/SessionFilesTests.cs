using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using StreamSpace.Agent.Platforms.Local;
using StreamSpace.Contracts;
using StreamSpace.Contracts.Api;
using StreamSpace.Tests.Api.Features.Agents;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Api.Features.Sessions;

/// <summary>
/// The API in this process and the agent as a process of its own (so its memory can be read), running real Xvnc
/// sessions as their users' accounts, with the default upload limit of 1 GiB.
/// </summary>
public sealed class SessionFilesFixture : IAsyncLifetime
{
    public const long UploadLimit = 1L << 30;
    public const string AgentId = "files-agent";

    public ApiFactory Api { get; private set; } = null!;

    public AgentProcess Agent { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Api = new ApiFactory(await SharedPostgres.CreateDatabaseAsync(), new Dictionary<string, string?>
        {
            ["SESSION_QUOTA"] = "20",
        }).Start();
        Agent = AgentProcess.Start(Api.AgentHubUrl, AgentId, await Api.RegisterAgentAsync(AgentId));
        await Eventually.TrueAsync(async () => (await Api.GetAgentAsync(AgentId)).GetProperty("status").GetString() == "online",
            TimeSpan.FromSeconds(30), "the agent process to connect");
    }

    /// <summary>A new user with a running session, and their clients.</summary>
    public async Task<RunningSession> StartSessionAsync()
    {
        var client = await Api.NewUserClientAsync();
        var userId = await client.UserIdAsync();
        var id = (await client.LaunchAsync()).Id;
        await client.WaitForStateAsync(id, SessionState.Running);
        var streaming = new HttpClient { BaseAddress = Api.BaseAddress, Timeout = TimeSpan.FromMinutes(5) };
        streaming.DefaultRequestHeaders.Authorization = client.DefaultRequestHeaders.Authorization;
        return new RunningSession(client, streaming, userId, id, HomeOf(userId));
    }

    public string HomeOf(Guid userId) => Path.Combine(Agent.DataDirectory, "homes", userId.ToString());

    public async Task DisposeAsync()
    {
        await Agent.DisposeAsync();
        await Api.DisposeAsync();
    }
}

/// <summary>A user's running session in the files tests, with the user's clients.</summary>
/// <param name="Streaming">
/// A plain client with the same sign-in, for large uploads: the test server's client copies a request body into
/// memory (to replay it on a redirect), which would measure the test's own buffering.
/// </param>
public sealed record RunningSession(HttpClient Client, HttpClient Streaming, Guid UserId, string Id, string Home) : IDisposable
{
    public string Files => $"/api/v1/sessions/{Id}/files";

    public void Dispose()
    {
        Client.Dispose();
        Streaming.Dispose();
    }
}

/// <summary>Uploads into a session's ~/Uploads and downloads from its ~/Downloads, through the API and the agent's data connection (issue 17).</summary>
public sealed class SessionFilesTests(SessionFilesFixture fixture) : IClassFixture<SessionFilesFixture>
{
    [Fact]
    public async Task A_100_MiB_upload_lands_in_the_users_Uploads_owned_by_their_account_with_the_same_SHA256_and_is_audited()
    {
        using var session = await StartAsync();
        const long size = 100L << 20;
        var sent = new GeneratedStream(size, seed: 17);
        var response = await session.Streaming.PutAsync($"{session.Files}/uploads/report%20final.bin", new StreamContent(sent));
        var stored = await response.AssertJsonAsync<UploadedFileResponse>(HttpStatusCode.Created);

        Assert.Equal(new UploadedFileResponse("report final.bin", size), stored);
        var path = Path.Combine(session.Home, "Uploads", "report final.bin");
        await using (var file = File.OpenRead(path))
        {
            Assert.Equal(Convert.ToHexString(sent.Hash()), Convert.ToHexString(await SHA256.HashDataAsync(file)));
        }

        var account = await AccountOfAsync(session.UserId);
        Assert.Equal(account, await OwnerAsync(path));
        Assert.Equal(account, await OwnerAsync(Path.Combine(session.Home, "Uploads")));
        Assert.Equal(UnixFiles.OwnerOnly, File.GetUnixFileMode(Path.Combine(session.Home, "Uploads")));

        // The same name again is kept beside the first, not over it.
        var again = await (await session.Client.PutAsync($"{session.Files}/uploads/report%20final.bin", new ByteArrayContent("second"u8.ToArray())))
            .AssertJsonAsync<UploadedFileResponse>(HttpStatusCode.Created);
        Assert.Equal("report final (1).bin", again.Name);
        Assert.Equal("second", await File.ReadAllTextAsync(Path.Combine(session.Home, "Uploads", "report final (1).bin")));
        Assert.Equal(size, new FileInfo(path).Length);
        Assert.Equal(["report final (1).bin", "report final.bin"], Directory.GetFiles(Path.Combine(session.Home, "Uploads")).Select(Path.GetFileName).Order(StringComparer.Ordinal));

        var audit = await AuditAsync(session.Id, "file.uploaded");
        var entry = Assert.Single(audit, e => e.Details.GetProperty("name").GetString() == "report final.bin");
        Assert.Equal(size, entry.Details.GetProperty("size").GetInt64());
        Assert.Equal(session.UserId, entry.ActorId);
    }

    [Fact]
    public async Task A_file_the_session_saved_in_Downloads_is_listed_and_downloads_byte_for_byte_and_is_audited()
    {
        using var session = await StartAsync();
        // Written by the session's own account, as a program in the session would.
        await AsAccountAsync(session.UserId, "mkdir -p \"$HOME/Downloads\" && head -c 3000001 /dev/urandom >\"$HOME/Downloads/photo é.raw\" && mkdir \"$HOME/Downloads/folder\"");
        var expected = await File.ReadAllBytesAsync(Path.Combine(session.Home, "Downloads", "photo é.raw"));

        var listed = await (await session.Client.GetAsync($"{session.Files}/downloads")).AssertJsonAsync<SessionFilesResponse>(HttpStatusCode.OK);
        var only = Assert.Single(listed.Files);
        Assert.Equal(("photo é.raw", 3000001L), (only.Name, only.Size));

        var response = await session.Client.GetAsync($"{session.Files}/downloads/{Uri.EscapeDataString("photo é.raw")}");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("attachment", response.Content.Headers.ContentDisposition?.DispositionType);
        Assert.Equal("photo é.raw", response.Content.Headers.ContentDisposition?.FileNameStar);
        Assert.Equal(expected, await response.Content.ReadAsByteArrayAsync());

        var entry = Assert.Single(await AuditAsync(session.Id, "file.downloaded"));
        Assert.Equal(("photo é.raw", 3000001L), (entry.Details.GetProperty("name").GetString(), entry.Details.GetProperty("size").GetInt64()));
    }

    [Fact]
    public async Task Names_that_leave_the_folder_and_symlinks_out_of_it_are_refused_and_nothing_is_written_outside()
    {
        using var session = await StartAsync();
        var outside = Directory.CreateTempSubdirectory("streamspace-outside-").FullName;
        File.SetUnixFileMode(outside, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute);

        foreach (var name in new[] { "..%2Fx", "a%2Fb", "..", "bad%01name", new string('n', 256) })
        {
            var response = await session.Client.PutAsync($"{session.Files}/uploads/{name}", new ByteArrayContent("escape"u8.ToArray()));
            Assert.True(response.StatusCode is >= HttpStatusCode.BadRequest and < HttpStatusCode.InternalServerError, $"{name}: {response.StatusCode}");
            var download = await session.Client.GetAsync($"{session.Files}/downloads/{name}");
            Assert.True(download.StatusCode is >= HttpStatusCode.BadRequest and < HttpStatusCode.InternalServerError, $"{name}: {download.StatusCode}");
        }

        var refused = await session.Client.PutAsync($"{session.Files}/uploads/..%2Fx", new ByteArrayContent("escape"u8.ToArray()));
        var problem = await refused.AssertJsonAsync(HttpStatusCode.BadRequest);
        Assert.Contains("/", problem.GetProperty("detail").GetString());
        Assert.False(File.Exists(Path.Combine(session.Home, "x")));

        // A symlink in ~/Downloads to a file the account may read all the same is not followed, nor listed.
        await AsAccountAsync(session.UserId, "mkdir -p \"$HOME/Downloads\" && ln -s /etc/passwd \"$HOME/Downloads/passwd\"");
        var link = await session.Client.GetAsync($"{session.Files}/downloads/passwd");
        Assert.Equal(HttpStatusCode.Forbidden, link.StatusCode);
        Assert.DoesNotContain("root:", await link.Content.ReadAsStringAsync());
        Assert.Empty((await (await session.Client.GetAsync($"{session.Files}/downloads")).AssertJsonAsync<SessionFilesResponse>(HttpStatusCode.OK)).Files);

        // A ~/Uploads that is a symlink to a folder elsewhere is refused, and nothing lands in that folder.
        await AsAccountAsync(session.UserId, $"rm -rf \"$HOME/Uploads\" && ln -s {outside} \"$HOME/Uploads\"");
        var intoLink = await session.Client.PutAsync($"{session.Files}/uploads/planted.txt", new ByteArrayContent("planted"u8.ToArray()));
        var linkProblem = await intoLink.AssertJsonAsync(HttpStatusCode.Conflict);
        Assert.Contains("Uploads", linkProblem.GetProperty("detail").GetString());
        Assert.Empty(Directory.GetFileSystemEntries(outside));
    }

    [Fact]
    public async Task Another_user_gets_404_for_the_sessions_files()
    {
        using var session = await StartAsync();
        using var other = await fixture.Api.NewUserClientAsync();
        Assert.Equal(HttpStatusCode.NotFound, (await other.PutAsync($"{session.Files}/uploads/a.txt", new ByteArrayContent("x"u8.ToArray()))).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await other.GetAsync($"{session.Files}/downloads")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await other.GetAsync($"{session.Files}/downloads/a.txt")).StatusCode);
        Assert.False(Directory.Exists(Path.Combine(session.Home, "Uploads")) && Directory.GetFiles(Path.Combine(session.Home, "Uploads")).Length > 0);
    }

    [Fact]
    public async Task An_upload_past_the_limit_gets_413_and_leaves_no_file_whether_it_announced_its_length_or_not()
    {
        using var session = await StartAsync();
        // Announced: refused by its Content-Length before a byte is read. With Expect: 100-continue the client waits
        // for that answer instead of sending a body the server will not read.
        using (var request = new HttpRequestMessage(HttpMethod.Put, $"{session.Files}/uploads/big.bin"))
        {
            request.Headers.ExpectContinue = true;
            request.Content = new StreamContent(new GeneratedStream(SessionFilesFixture.UploadLimit + 1, seed: 1));
            request.Content.Headers.ContentLength = SessionFilesFixture.UploadLimit + 1;
            var response = await session.Streaming.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            var problem = await response.AssertJsonAsync(HttpStatusCode.RequestEntityTooLarge);
            Assert.Contains("UPLOAD_MAX_BYTES", problem.GetProperty("detail").GetString());
        }

        // Unannounced (chunked): counted while it streams, and cut at the limit.
        using (var request = new HttpRequestMessage(HttpMethod.Put, $"{session.Files}/uploads/big.bin"))
        {
            request.Content = new StreamContent(new GeneratedStream(SessionFilesFixture.UploadLimit + (1 << 20), seed: 2));
            request.Headers.TransferEncodingChunked = true;
            var response = await session.Streaming.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            await response.AssertJsonAsync(HttpStatusCode.RequestEntityTooLarge);
        }

        // The agent removes the partial file once it sees the connection cut.
        await Eventually.TrueAsync(() => Task.FromResult(Directory.GetFileSystemEntries(Path.Combine(session.Home, "Uploads")).Length == 0),
            TimeSpan.FromSeconds(10), "the cut upload's partial file to be removed");
        Assert.Empty(await AuditAsync(session.Id, "file.uploaded"));
    }

    private Task<RunningSession> StartAsync() => fixture.StartSessionAsync();

    private async Task<List<AuditEntryResponse>> AuditAsync(string sessionId, string action)
    {
        using var admin = await fixture.Api.AdminClientAsync();
        var page = await (await admin.GetAsync($"/api/v1/audit?target_type=session&target_id={sessionId}&page_size=100")).AssertJsonAsync<AuditPage>(HttpStatusCode.OK);
        return page.Items.Where(e => e.Action == action).ToList();
    }

    /// <summary>The account the user's sessions run as: their own under isolation (tests run as root), else this process's.</summary>
    private static async Task<string> AccountOfAsync(Guid userId) =>
        Environment.IsPrivilegedProcess ? SessionAccounts.NameFor(userId) : (await ProcessRunner.RunCheckedAsync("id", "-un")).Trim();

    private static async Task<string> OwnerAsync(string path) => (await ProcessRunner.RunCheckedAsync("stat", "-c", "%U", path)).Trim();

    private Task AsAccountAsync(Guid userId, string command) => SessionAccountShell.RunAsync(fixture.HomeOf(userId), userId, command);
}

/// <summary>
/// The memory a large upload costs the API and the agent. Alone in the process: the API's RSS is the test process's,
/// which another test running beside it would change.
/// </summary>
[Collection(UploadMemoryCollection.Name)]
public sealed class UploadMemoryTests(SessionFilesFixture fixture, Xunit.Abstractions.ITestOutputHelper output) : IClassFixture<SessionFilesFixture>
{
    [Fact]
    public async Task During_a_1_GiB_upload_the_APIs_and_the_agents_memory_stay_within_64_MiB_of_where_they_started()
    {
        using var session = await fixture.StartSessionAsync();
        // A first upload, so what the first one sets up once (pools, JIT) is in the baseline.
        (await session.Streaming.PutAsync($"{session.Files}/uploads/warm-up.bin", new StreamContent(new GeneratedStream(8 << 20, seed: 3)))).EnsureSuccessStatusCode();
        var agentBefore = ResidentBytes(fixture.Agent.Pid);
        // The API runs in this test process, so this is the process's own RSS: the API's and the test client's together.
        var apiBefore = ResidentBytes(Environment.ProcessId);
        long agentPeak = agentBefore, apiPeak = apiBefore;
        using var sampling = new CancellationTokenSource();
        var sampler = Task.Run(async () =>
        {
            while (!sampling.IsCancellationRequested)
            {
                agentPeak = Math.Max(agentPeak, ResidentBytes(fixture.Agent.Pid));
                apiPeak = Math.Max(apiPeak, ResidentBytes(Environment.ProcessId));
                await Task.Delay(20, CancellationToken.None);
            }
        });

        var sent = new GeneratedStream(SessionFilesFixture.UploadLimit, seed: 4);
        var stored = await (await session.Streaming.PutAsync($"{session.Files}/uploads/one-gib.bin", new StreamContent(sent))).AssertJsonAsync<UploadedFileResponse>(HttpStatusCode.Created);
        await sampling.CancelAsync();
        await sampler;

        output.WriteLine($"agent RSS {agentBefore >> 20} MiB, peak +{(agentPeak - agentBefore) >> 20} MiB; test process (API) RSS {apiBefore >> 20} MiB, peak +{(apiPeak - apiBefore) >> 20} MiB");
        Assert.Equal(SessionFilesFixture.UploadLimit, stored.Size);
        Assert.Equal(SessionFilesFixture.UploadLimit, new FileInfo(Path.Combine(session.Home, "Uploads", "one-gib.bin")).Length);
        const long allowed = 64L << 20;
        Assert.True(agentPeak - agentBefore < allowed, $"the agent's RSS grew by {(agentPeak - agentBefore) >> 20} MiB (from {agentBefore >> 20} MiB)");
        Assert.True(apiPeak - apiBefore < allowed, $"the API's (test process's) RSS grew by {(apiPeak - apiBefore) >> 20} MiB (from {apiBefore >> 20} MiB)");
        File.Delete(Path.Combine(session.Home, "Uploads", "one-gib.bin"));
    }

    /// <summary>VmRSS of a process, in bytes.</summary>
    private static long ResidentBytes(int pid)
    {
        var line = File.ReadLines($"/proc/{pid}/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture) * 1024;
    }
}

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class UploadMemoryCollection
{
    public const string Name = "Upload memory (alone in the process)";
}

/// <summary>Runs a shell command as a user's session account with its HOME, as a program in the session would.</summary>
public static class SessionAccountShell
{
    public static async Task RunAsync(string home, Guid userId, string command)
    {
        if (!Environment.IsPrivilegedProcess)
        {
            await ProcessRunner.RunCheckedAsync("env", $"HOME={home}", "bash", "-c", command);
            return;
        }

        var account = SessionAccounts.NameFor(userId);
        var uid = (await ProcessRunner.RunCheckedAsync("id", "-u", account)).Trim();
        var gid = (await ProcessRunner.RunCheckedAsync("id", "-g", account)).Trim();
        await ProcessRunner.RunCheckedAsync("setpriv", $"--reuid={uid}", $"--regid={gid}", "--clear-groups", "--", "env", $"HOME={home}", "bash", "-c", command);
    }
}

/// <summary>
/// A read-only stream of <c>length</c> pseudo-random bytes, made as it is read (never held whole), that keeps their
/// SHA-256 as it goes.
/// </summary>
public sealed class GeneratedStream(long length, int seed) : Stream
{
    private readonly Random random = new(seed);
    private readonly IncrementalHash hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private long position;
    private byte[]? finalHash;

    /// <summary>The SHA-256 of what was read so far; it stays readable after the stream is disposed (HttpClient disposes what it sent).</summary>
    public byte[] Hash() => finalHash ?? hash.GetCurrentHash();

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        var count = (int)Math.Min(buffer.Length, length - position);
        random.NextBytes(buffer[..count]);
        hash.AppendData(buffer[..count]);
        position += count;
        return count;
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => ValueTask.FromResult(Read(buffer.Span));

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => Task.FromResult(Read(buffer.AsSpan(offset, count)));

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => length;

    public override long Position { get => position; set => throw new NotSupportedException(); }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing && finalHash is null)
        {
            finalHash = hash.GetCurrentHash();
            hash.Dispose();
        }

        base.Dispose(disposing);
    }
}
