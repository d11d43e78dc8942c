using System.Globalization;
using System.Net;
using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using StreamSpace.Contracts;
using StreamSpace.Contracts.Api;
using StreamSpace.Tests.Agent.Audio;
using StreamSpace.Tests.Agent.Files;
using StreamSpace.Tests.Api.Features.Sessions;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Agent.Kubernetes;

/// <summary>
/// Files in and out of a Kubernetes session (issue 17): through the real API and the real kubernetes agent to the
/// session pod's file service, the real <c>files-serve</c> process on the pod's address, as the session's user, with
/// the key from the session's Secret. The fake API server plays the kubelet, pods/portforward included.
/// </summary>
public sealed class KubernetesFilesTests(KubernetesFixture fixture) : IClassFixture<KubernetesFixture>
{
    private const string Ns = KubernetesFixture.Namespace;
    private static int lastPodAddress = 1;

    private FakeKubernetesApi Kube => fixture.Kubernetes;

    [Fact]
    public async Task Through_pods_portforward_an_upload_lands_in_the_pods_Uploads_and_Downloads_lists_and_downloads_byte_for_byte()
    {
        using var user = await fixture.Api.NewUserClientAsync();
        var (id, pod) = await RunningSessionAsync(user);
        await using var _ = pod;
        var files = $"/api/v1/sessions/{id}/files";

        var content = RandomNumberGenerator.GetBytes(10 * 1024 * 1024 + 3);
        var stored = await (await user.PutAsync($"{files}/uploads/report%20final.bin", new ByteArrayContent(content))).AssertJsonAsync<UploadedFileResponse>(HttpStatusCode.Created);
        Assert.Equal(new UploadedFileResponse("report final.bin", content.Length), stored);
        var path = Path.Combine(pod.Home, "Uploads", "report final.bin");
        Assert.Equal(Convert.ToHexString(SHA256.HashData(content)), Convert.ToHexString(SHA256.HashData(await File.ReadAllBytesAsync(path))));
        Assert.Equal(FileServiceProcess.Uid.ToString(CultureInfo.InvariantCulture), (await ProcessRunner.RunCheckedAsync("stat", "-c", "%u", path)).Trim());
        var again = await (await user.PutAsync($"{files}/uploads/report%20final.bin", new ByteArrayContent("second"u8.ToArray()))).AssertJsonAsync<UploadedFileResponse>(HttpStatusCode.Created);
        Assert.Equal("report final (1).bin", again.Name);

        await pod.AsSessionUserAsync("mkdir -p \"$HOME/Downloads\" && head -c 2000001 /dev/urandom >\"$HOME/Downloads/photo é.raw\"");
        var expected = await File.ReadAllBytesAsync(Path.Combine(pod.Home, "Downloads", "photo é.raw"));
        var listed = await (await user.GetAsync($"{files}/downloads")).AssertJsonAsync<SessionFilesResponse>(HttpStatusCode.OK);
        var only = Assert.Single(listed.Files);
        Assert.Equal(("photo é.raw", 2000001L), (only.Name, only.Size));
        var download = await user.GetAsync($"{files}/downloads/{Uri.EscapeDataString("photo é.raw")}");
        Assert.Equal(HttpStatusCode.OK, download.StatusCode);
        Assert.Equal(expected, await download.Content.ReadAsByteArrayAsync());

        Assert.Contains(Kube.Calls, c => c == new KubernetesCall("create", "", "pods/portforward"));

        // Audited as on the local platform: the API does not care where the session runs.
        // The download's entry is written once its last byte is sent, which the client may have read a moment before.
        using var admin = await fixture.Api.AdminClientAsync();
        IReadOnlyList<AuditEntryResponse> audit = [];
        await Eventually.TrueAsync(async () =>
        {
            audit = (await (await admin.GetAsync($"/api/v1/audit?target_type=session&target_id={id}&page_size=100")).AssertJsonAsync<AuditPage>(HttpStatusCode.OK)).Items;
            return audit.Any(e => e.Action == "file.downloaded");
        }, TimeSpan.FromSeconds(10), "the download's audit entry");
        Assert.Contains(audit, e => e.Action == "file.uploaded" && e.Details.GetProperty("name").GetString() == "report final.bin" && e.Details.GetProperty("size").GetInt64() == content.Length);
        Assert.Contains(audit, e => e.Action == "file.downloaded" && e.Details.GetProperty("name").GetString() == "photo é.raw");
    }

    [Fact]
    public async Task Names_that_leave_the_folder_and_symlinks_out_of_it_are_refused_and_nothing_is_written_outside_the_pods_folders()
    {
        using var user = await fixture.Api.NewUserClientAsync();
        var (id, pod) = await RunningSessionAsync(user);
        await using var _ = pod;
        var files = $"/api/v1/sessions/{id}/files";

        var refused = await user.PutAsync($"{files}/uploads/..%2Fx", new ByteArrayContent("escape"u8.ToArray()));
        Assert.Contains("/", (await refused.AssertJsonAsync(HttpStatusCode.BadRequest)).GetProperty("detail").GetString());
        Assert.False(File.Exists(Path.Combine(pod.Home, "x")));

        await pod.AsSessionUserAsync("mkdir -p \"$HOME/Downloads\" && ln -s /etc/passwd \"$HOME/Downloads/passwd\"");
        var link = await user.GetAsync($"{files}/downloads/passwd");
        Assert.Equal(HttpStatusCode.Forbidden, link.StatusCode);
        Assert.DoesNotContain("root:", await link.Content.ReadAsStringAsync());
        Assert.Empty((await (await user.GetAsync($"{files}/downloads")).AssertJsonAsync<SessionFilesResponse>(HttpStatusCode.OK)).Files);

        var outside = Directory.CreateTempSubdirectory("streamspace-outside-").FullName;
        File.SetUnixFileMode(outside, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute);
        try
        {
            await pod.AsSessionUserAsync($"ln -s {outside} \"$HOME/Uploads\"");
            var intoLink = await user.PutAsync($"{files}/uploads/planted.txt", new ByteArrayContent("planted"u8.ToArray()));
            Assert.Contains("Uploads", (await intoLink.AssertJsonAsync(HttpStatusCode.Conflict)).GetProperty("detail").GetString());
            Assert.Empty(Directory.GetFileSystemEntries(outside));
        }
        finally
        {
            Directory.Delete(outside, recursive: true);
        }
    }

    [Fact]
    public async Task A_file_service_holding_another_key_refuses_the_agent_and_the_user_gets_a_502_that_says_so()
    {
        using var user = await fixture.Api.NewUserClientAsync();
        var (id, pod) = await RunningSessionAsync(user, key: RandomNumberGenerator.GetBytes(32));
        await using var _ = pod;

        var response = await user.PutAsync($"/api/v1/sessions/{id}/files/uploads/a.txt", new ByteArrayContent("x"u8.ToArray()));
        var problem = await response.AssertJsonAsync(HttpStatusCode.BadGateway);
        Assert.Contains("files key", problem.GetProperty("detail").GetString());
        Assert.False(Directory.Exists(Path.Combine(pod.Home, "Uploads")));
        await Eventually.TrueAsync(() => Task.FromResult(pod.Log.Contains("did not prove the session's files key", StringComparison.Ordinal)),
            TimeSpan.FromSeconds(10), "the file service to log the refused connection");
    }

    [Fact]
    public async Task Inside_the_cluster_files_go_to_the_pod_ip_without_pods_portforward()
    {
        await fixture.RestartAgentAsync(new Dictionary<string, string?> { ["SESSION_TUNNEL"] = "podip" });
        try
        {
            using var user = await fixture.Api.NewUserClientAsync();
            var (id, pod) = await RunningSessionAsync(user);
            await using var _ = pod;
            var forwardsBefore = Kube.Calls.Count(c => c.Resource == "pods/portforward");

            var stored = await (await user.PutAsync($"/api/v1/sessions/{id}/files/uploads/notes.txt", new ByteArrayContent("over the pod IP"u8.ToArray())))
                .AssertJsonAsync<UploadedFileResponse>(HttpStatusCode.Created);
            Assert.Equal("notes.txt", stored.Name);
            Assert.Equal("over the pod IP", await File.ReadAllTextAsync(Path.Combine(pod.Home, "Uploads", "notes.txt")));
            Assert.Equal(forwardsBefore, Kube.Calls.Count(c => c.Resource == "pods/portforward"));
        }
        finally
        {
            await fixture.RestartAgentAsync();
        }
    }

    [Fact]
    public async Task The_pod_has_the_files_port_and_the_key_as_a_read_only_file_of_the_secret_and_no_secret_in_its_env_or_args()
    {
        using var user = await fixture.Api.NewUserClientAsync();
        var id = (await user.LaunchAsync()).Id;
        await fixture.Kubelet.PodAsync(id);
        var key = await FilesKeyAsync(id);
        Assert.Equal(32, key.Length);

        var podSpec = Kube.Get("deployments", Ns, $"session-{id}")!["spec"]!["template"]!["spec"]!;
        var container = podSpec["containers"]![0]!;
        var ports = container["ports"]!.AsArray();
        Assert.Equal(5900, ports[0]!["containerPort"]!.GetValue<int>());
        Assert.Contains(ports, p => p!["name"]!.GetValue<string>() == "files" && p["containerPort"]!.GetValue<int>() == 5990);

        var env = container["env"]!.AsArray();
        var keyFile = env.Single(e => e!["name"]!.GetValue<string>() == "STREAMSPACE_FILES_KEY_FILE")!["value"]!.GetValue<string>();
        var mount = container["volumeMounts"]!.AsArray().Single(m => keyFile.StartsWith(m!["mountPath"]!.GetValue<string>() + "/", StringComparison.Ordinal))!;
        Assert.True(mount["readOnly"]!.GetValue<bool>());
        var volume = podSpec["volumes"]!.AsArray().Single(v => v!["name"]!.GetValue<string>() == mount["name"]!.GetValue<string>())!["secret"]!;
        Assert.Equal($"session-{id}-vnc", volume["secretName"]!.GetValue<string>());
        var item = volume["items"]!.AsArray().Single(i => i!["key"]!.GetValue<string>() == "files-key")!;
        Assert.Equal($"{mount["mountPath"]!.GetValue<string>()}/{item["path"]!.GetValue<string>()}", keyFile);

        // Neither the key nor the Secret reaches the environment or the command line, where any process could read it.
        var spec = container.ToJsonString();
        foreach (var form in new[] { Convert.ToBase64String(key), Convert.ToHexString(key), Convert.ToHexStringLower(key) })
        {
            Assert.DoesNotContain(form, spec, StringComparison.Ordinal);
        }

        Assert.DoesNotContain(env, e => e!["valueFrom"]?["secretKeyRef"]?["name"]?.GetValue<string>() == $"session-{id}-vnc");
        Assert.Null(container["args"]);
        Assert.Null(container["command"]);
    }

    [Fact]
    public async Task A_session_whose_secret_has_no_files_key_gets_409_saying_to_start_it_again()
    {
        using var user = await fixture.Api.NewUserClientAsync();
        var (id, pod) = await RunningSessionAsync(user);
        await using var _ = pod;
        // As an agent from before the file service left it.
        Assert.True(Kube.Update("secrets", Ns, $"session-{id}-vnc", s => s["data"]!.AsObject().Remove("files-key")));

        var response = await user.GetAsync($"/api/v1/sessions/{id}/files/downloads");
        Assert.Contains("start it again", (await response.AssertJsonAsync(HttpStatusCode.Conflict)).GetProperty("detail").GetString());
    }

    [Fact]
    public async Task The_sessions_sound_reaches_a_listener_through_the_pods_file_service_port_as_a_440_Hz_tone()
    {
        using var user = await fixture.Api.NewUserClientAsync();
        await using var sound = await SoundServerProcess.StartAsync();
        var (id, pod) = await RunningSessionAsync(user, soundSocket: sound.Socket);
        await using var _ = pod;
        var env = Kube.Get("deployments", Ns, $"session-{id}")!["spec"]!["template"]!["spec"]!["containers"]![0]!["env"]!.AsArray();
        // session.sh starts the pod's PulseAudio on this (the template's audio).
        Assert.Equal("1", env.Single(e => e!["name"]!.GetValue<string>() == "STREAMSPACE_AUDIO")!["value"]!.GetValue<string>());

        var ticket = await (await user.PostAsync($"/api/v1/sessions/{id}/connect", null)).AssertJsonAsync<ConnectResponse>(HttpStatusCode.OK);
        using var listener = new ClientWebSocket();
        using (var connecting = new CancellationTokenSource(TimeSpan.FromSeconds(10)))
        {
            await listener.ConnectAsync(new UriBuilder(new Uri(fixture.Api.BaseAddress, ticket.AudioUrl)) { Scheme = "ws" }.Uri, connecting.Token);
        }

        // Two seconds of packets; the second is past the codec's and the tone's start.
        var packets = new List<byte[]>();
        var buffer = new byte[4096];
        using var receiving = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        while (packets.Count < 100)
        {
            var message = await listener.ReceiveAsync(buffer, receiving.Token);
            Assert.Equal(WebSocketMessageType.Binary, message.MessageType);
            packets.Add(buffer[..message.Count]);
        }

        var (peak, power) = Tone.Peak(Tone.DecodeLeft(packets).Skip(48_000).ToArray(), 48_000);
        Assert.InRange(peak, 430, 450);
        Assert.True(power > 0.01, $"the tone's power is {power}");
        Assert.Contains(Kube.Calls, c => c == new KubernetesCall("create", "", "pods/portforward"));
    }

    /// <summary>A running session whose "pod" runs the file service with the key of its Secret (or <paramref name="key"/>), and the sound server at <paramref name="soundSocket"/>.</summary>
    private async Task<(string Id, FileServiceProcess Pod)> RunningSessionAsync(HttpClient user, byte[]? key = null, string? soundSocket = null)
    {
        var id = (await user.LaunchAsync()).Id;
        await fixture.Kubelet.PodAsync(id);
        var podIp = NextPodAddress();
        var pod = await FileServiceProcess.StartAsync(podIp, 5990, key ?? await FilesKeyAsync(id), id, soundSocket);
        try
        {
            await fixture.Kubelet.MarkReadyAsync(id, podIp);
            await user.WaitForStateAsync(id, SessionState.Running);
            return (id, pod);
        }
        catch
        {
            await pod.DisposeAsync();
            throw;
        }
    }

    private async Task<byte[]> FilesKeyAsync(string id)
    {
        JsonObject? secret = null;
        await Eventually.TrueAsync(() => Task.FromResult((secret = Kube.Get("secrets", Ns, $"session-{id}-vnc")) is not null),
            TimeSpan.FromSeconds(10), $"the Secret of session {id}");
        return Convert.FromBase64String(secret!["data"]!["files-key"]!.GetValue<string>());
    }

    /// <summary>A loopback address of its own per simulated pod, apart from the other kubernetes tests' addresses.</summary>
    private static string NextPodAddress() => $"127.0.{Environment.ProcessId % 200 + 40}.{Interlocked.Increment(ref lastPodAddress) % 250 + 2}";
}
