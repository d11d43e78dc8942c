using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text.Json;
using Microsoft.Playwright;
using StreamSpace.Agent.Platforms.Local;
using StreamSpace.Contracts;
using StreamSpace.Contracts.Api;
using StreamSpace.Tests.Agent.Audio;
using StreamSpace.Tests.Api.Features.Sessions;
using StreamSpace.Tests.Infrastructure;
using Xunit.Abstractions;

namespace StreamSpace.Tests.Web;

/// <summary>
/// A session's sound (issue 18) end to end: a template whose program plays a 440 Hz tone with paplay into the
/// session's own PulseAudio; the agent captures and encodes it, the API relays it, and the viewer in Debian's chromium
/// plays it. The test taps what the page connects to the AudioContext's destination into an AnalyserNode.
/// </summary>
public sealed class ViewerSoundTests(WebFixture fixture, ITestOutputHelper output) : IClassFixture<WebFixture>, IDisposable
{
    // What the page connects to its AudioContext's output also feeds an analyser, read by the test.
    private const string AnalyserTap = """
        (() => {
            const connect = AudioNode.prototype.connect;
            AudioNode.prototype.connect = function (destination, ...rest) {
                const result = connect.call(this, destination, ...rest);
                if (destination instanceof AudioDestinationNode) {
                    const analyser = destination.context.createAnalyser();
                    analyser.fftSize = 8192;
                    // Each read shows the output as it is now, not an average with what came before.
                    analyser.smoothingTimeConstant = 0;
                    connect.call(this, analyser);
                    window.__soundTap = analyser;
                }
                return result;
            };
        })();
        """;

    // The loudest frequency bin of the tapped output and its level (dBFS); null before the page plays anything.
    private const string ReadPeak = """
        () => {
            const analyser = window.__soundTap;
            if (!analyser) return null;
            const bins = new Float32Array(analyser.frequencyBinCount);
            analyser.getFloatFrequencyData(bins);
            let best = 0;
            for (let i = 1; i < bins.length; i++) if (bins[i] > bins[best]) best = i;
            return [best * analyser.context.sampleRate / analyser.fftSize, Number.isFinite(bins[best]) ? bins[best] : -1000];
        }
        """;

    private static readonly TimeSpan SoundWithin = TimeSpan.FromSeconds(3);
    private static readonly TimeSpan ClosesWithin = TimeSpan.FromSeconds(5);

    private readonly string toneDirectory = ToneDirectory();

    [Fact]
    public async Task The_viewer_plays_the_sessions_440_Hz_tone_within_3_s_mute_silences_it_and_stops_the_capture_and_is_remembered()
    {
        var (username, id, userId) = await NewUserWithRunningSessionAsync("sound", await ToneTemplateAsync(audio: true));
        var account = SessionAccounts.NameFor(userId);
        // The session's own sound server, as its account.
        await Eventually.TrueAsync(async () => await RunsAsync(account, "pulseaudio"), TimeSpan.FromSeconds(10), "the session's PulseAudio to run as its account");

        var page = await fixture.NewPageAsync();
        await page.AddInitScriptAsync(AnalyserTap);
        var audioSockets = new List<(IWebSocket Socket, Stopwatch Since)>();
        page.WebSocket += (_, socket) =>
        {
            if (socket.Url.Contains($"/audio/{id}", StringComparison.Ordinal))
            {
                lock (audioSockets)
                {
                    audioSockets.Add((socket, Stopwatch.StartNew()));
                }
            }
        };
        page.Console += (_, message) => output.WriteLine($"console {message.Type}: {message.Text}");
        await WebFixture.LogInAsync(page, username, WebFixture.UserPassword);
        await page.GotoAsync($"sessions/{id}/view");
        await Eventually.TrueAsync(() => Task.FromResult(AudioSocketCount(audioSockets) > 0), TimeSpan.FromSeconds(20), "the viewer to open the audio WebSocket");
        var connected = audioSockets[0].Since;

        (double Frequency, double Level)? peak = null;
        await Eventually.TrueAsync(async () => (peak = await PeakAsync(page)) is { Frequency: > 400 and < 480, Level: > -60 },
            SoundWithin, $"a 440 Hz peak in the viewer's output (last: {peak})");
        output.WriteLine($"440 Hz heard {connected.ElapsedMilliseconds} ms after the audio WebSocket opened: peak {peak}");
        Assert.True(await RunsAsync(account, "parec"), "the agent captures while a viewer listens");

        var saved = page.WaitForResponseAsync(r => r.Url.EndsWith("/api/v1/users/me/viewer-preferences", StringComparison.Ordinal) && r.Request.Method == "PUT");
        await page.GetByRole(AriaRole.Button, new() { Name = "Mute" }).ClickAsync();
        Assert.Equal((int)HttpStatusCode.OK, (await saved).Status);
        await Eventually.TrueAsync(async () => (peak = await PeakAsync(page)) is { Level: < -100 }, SoundWithin, $"silence once muted (last: {peak})");
        using var api = await fixture.Api.ClientForAsync(username, WebFixture.UserPassword);
        Assert.True((await (await api.GetAsync("/api/v1/users/me/viewer-preferences")).AssertJsonAsync<ViewerPreferences>(HttpStatusCode.OK)).AudioMuted);
        // Muted, nothing is sent: the socket closes and the agent stops capturing.
        await Eventually.TrueAsync(() => Task.FromResult(audioSockets[0].Socket.IsClosed), ClosesWithin, "the audio socket to close once muted");
        await Eventually.TrueAsync(async () => !await RunsAsync(account, "parec"), ClosesWithin, "the capture to stop once muted");

        // Unmuted, the sound is back: a new audio socket, the tone again within 3 s.
        await page.GetByRole(AriaRole.Button, new() { Name = "Unmute" }).ClickAsync();
        await Eventually.TrueAsync(() => Task.FromResult(AudioSocketCount(audioSockets) > 1), TimeSpan.FromSeconds(10), "the viewer to open a new audio WebSocket");
        await Eventually.TrueAsync(async () => (peak = await PeakAsync(page)) is { Frequency: > 400 and < 480, Level: > -60 },
            SoundWithin, $"the 440 Hz tone again once unmuted (last: {peak})");

        // Closing the viewer closes its audio socket, and the agent stops capturing: no listener, no cost.
        await page.Context.CloseAsync();
        await Eventually.TrueAsync(async () => !await RunsAsync(account, "parec"), ClosesWithin, "the capture to stop once the viewer closed");

        // Muted again, another browser of the same user opens muted: the button offers Unmute, and no sound is sent.
        await api.PutAsJsonAsync("/api/v1/users/me/viewer-preferences", new ViewerPreferences(ScaleViewport: false, AudioMuted: true), ApiJson.Options);
        var other = await fixture.NewPageAsync();
        var otherSockets = new List<string>();
        other.WebSocket += (_, socket) =>
        {
            lock (otherSockets)
            {
                otherSockets.Add(socket.Url);
            }
        };
        await WebFixture.LogInAsync(other, username, WebFixture.UserPassword);
        await other.GotoAsync($"sessions/{id}/view");
        await Assertions.Expect(other.Locator("#viewer-status")).ToHaveTextAsync("Connected");
        await Assertions.Expect(other.GetByRole(AriaRole.Button, new() { Name = "Unmute" })).ToBeVisibleAsync();
        lock (otherSockets)
        {
            Assert.DoesNotContain(otherSockets, url => url.Contains("/audio/", StringComparison.Ordinal));
        }

        await other.Context.CloseAsync();
    }

    [Fact]
    public async Task With_audio_off_for_the_template_there_is_no_sound_server_no_audio_url_and_no_audio_socket()
    {
        var (username, id, userId) = await NewUserWithRunningSessionAsync("silent", await ToneTemplateAsync(audio: false));
        using var api = await fixture.Api.ClientForAsync(username, WebFixture.UserPassword);
        var answer = await (await api.PostAsync($"/api/v1/sessions/{id}/connect", null)).AssertJsonAsync(HttpStatusCode.OK);
        Assert.False(answer.TryGetProperty("audio_url", out var audioUrl) && audioUrl.ValueKind != JsonValueKind.Null, answer.ToString());

        var page = await fixture.NewPageAsync();
        var sockets = new List<string>();
        page.WebSocket += (_, socket) =>
        {
            lock (sockets)
            {
                sockets.Add(socket.Url);
            }
        };
        await WebFixture.LogInAsync(page, username, WebFixture.UserPassword);
        await page.GotoAsync($"sessions/{id}/view");
        await Assertions.Expect(page.Locator("#viewer-status")).ToHaveTextAsync("Connected");
        // The viewer opens its sockets together (the audio one right after the VNC one): by now it would have.
        lock (sockets)
        {
            Assert.Contains(sockets, url => url.Contains($"/vnc/{id}", StringComparison.Ordinal));
            Assert.DoesNotContain(sockets, url => url.Contains("/audio/", StringComparison.Ordinal));
        }

        await Assertions.Expect(page.Locator("#viewer-mute")).ToBeHiddenAsync();
        Assert.False(await RunsAsync(SessionAccounts.NameFor(userId), "pulseaudio"), "a session without audio runs no sound server");
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task Over_plain_http_from_another_host_the_viewer_says_sound_needs_https_and_opens_no_audio_socket()
    {
        var (username, id, _) = await NewUserWithRunningSessionAsync("insecure", await ToneTemplateAsync(audio: true));
        // A name other than localhost: plain http there is not a secure context, so WebCodecs is not offered.
        const string host = "streamspace.test";
        await using var browser = await fixture.LaunchBrowserAsync($"--host-resolver-rules=MAP {host} 127.0.0.1");
        var context = await browser.NewContextAsync(new()
        {
            BaseURL = new UriBuilder(fixture.WebAddress) { Host = host }.Uri.ToString(),
            ViewportSize = new() { Width = 1366, Height = 900 },
        });
        context.SetDefaultTimeout(20_000);
        var page = await context.NewPageAsync();
        var sockets = new List<string>();
        page.WebSocket += (_, socket) =>
        {
            lock (sockets)
            {
                sockets.Add(socket.Url);
            }
        };
        await WebFixture.LogInAsync(page, username, WebFixture.UserPassword);
        await page.GotoAsync($"sessions/{id}/view");
        await Assertions.Expect(page.Locator("#viewer-status")).ToHaveTextAsync("Connected");
        Assert.False(await page.EvaluateAsync<bool>("() => window.isSecureContext"));

        await Assertions.Expect(page.Locator("#viewer-sound-note")).ToHaveTextAsync("Sound needs HTTPS");
        await Assertions.Expect(page.Locator("#viewer-mute")).ToBeHiddenAsync();
        lock (sockets)
        {
            Assert.Contains(sockets, url => url.Contains($"/vnc/{id}", StringComparison.Ordinal));
            Assert.DoesNotContain(sockets, url => url.Contains("/audio/", StringComparison.Ordinal));
        }

        await context.CloseAsync();
    }

    [Fact]
    public async Task The_audio_socket_carries_opus_packets_closes_when_the_sign_in_is_revoked_and_refuses_a_stopped_session()
    {
        var template = await ToneTemplateAsync(audio: true);
        var (username, id, _) = await NewUserWithRunningSessionAsync("listener", template);
        using var api = await fixture.Api.ClientForAsync(username, WebFixture.UserPassword);

        // Without a ticket: refused before any WebSocket.
        using var anonymous = new HttpClient { BaseAddress = fixture.Api.BaseAddress };
        Assert.Equal(HttpStatusCode.BadRequest, (await anonymous.GetAsync($"/audio/{id}")).StatusCode);

        using var listener = await OpenAudioAsync(api, id);
        var buffer = new byte[4096];
        await ReceivePacketsAsync(listener, buffer);

        using var admin = await fixture.Api.AdminClientAsync();
        var userId = await api.UserIdAsync();
        (await admin.PatchAsJsonAsync($"/api/v1/users/{userId}", new { disabled = true })).EnsureSuccessStatusCode();
        var clock = Stopwatch.StartNew();
        var (status, reason) = await WaitForCloseAsync(listener, buffer);
        Assert.True(clock.Elapsed < ClosesWithin, $"the audio socket closed after {clock.Elapsed}");
        Assert.Equal(4401, status);
        Assert.Contains("the user is disabled", reason);

        // A stopped session: its audio ticket opens nothing but a refusal that says why.
        var (otherName, otherId, _) = await NewUserWithRunningSessionAsync("stopped", template);
        using var other = await fixture.Api.ClientForAsync(otherName, WebFixture.UserPassword);
        var audioUrl = await AudioUrlAsync(other, otherId);
        (await other.DeleteAsync($"/api/v1/sessions/{otherId}")).EnsureSuccessStatusCode();
        await other.WaitForStateAsync(otherId, SessionState.Stopped);
        using var refused = await ConnectAsync(audioUrl);
        (status, reason) = await WaitForCloseAsync(refused, buffer);
        Assert.Equal(4409, status);
        Assert.Equal("session is stopped", reason);
    }

    [Fact]
    public async Task A_shares_listener_hears_the_session_until_the_share_ends_and_the_owners_until_the_session_stops()
    {
        var (ownerName, id, _) = await NewUserWithRunningSessionAsync("owner", await ToneTemplateAsync(audio: true));
        using var owner = await fixture.Api.ClientForAsync(ownerName, WebFixture.UserPassword);
        var share = await (await owner.PostAsJsonAsync($"/api/v1/sessions/{id}/shares", new CreateShareRequest(), ApiJson.Options))
            .AssertJsonAsync<ShareResponse>(HttpStatusCode.Created);
        using var recipient = await fixture.Api.ClientForAsync(await fixture.NewUserAsync("guest"), WebFixture.UserPassword);
        var ticket = await (await recipient.PostAsync($"/api/v1/shares/{share.Id}/connect", null)).AssertJsonAsync<ConnectResponse>(HttpStatusCode.OK);
        Assert.StartsWith($"/audio/{id}?ticket=", ticket.AudioUrl);
        // Each listens beside a viewer of their own, as the page does: sound lives only while its viewer does.
        using var guestViewer = await RfbViewer.ConnectAsync(fixture.Api.BaseAddress, ticket.Url);
        await guestViewer.HandshakeAsync();
        using var guest = await ConnectAsync(ticket.AudioUrl!);
        var (ownViewer, own) = await OpenViewerAndAudioAsync(owner, id);
        using var ownViewerDisposed = ownViewer;
        using var ownDisposed = own;
        var buffer = new byte[4096];
        await ReceivePacketsAsync(guest, buffer);
        await ReceivePacketsAsync(own, buffer);

        Assert.Equal(HttpStatusCode.NoContent, (await owner.DeleteAsync($"/api/v1/sessions/{id}/shares/{share.Id}")).StatusCode);
        var clock = Stopwatch.StartNew();
        var (status, _) = await WaitForCloseAsync(guest, buffer);
        Assert.True(clock.Elapsed < ClosesWithin, $"the share's audio socket closed after {clock.Elapsed}");
        Assert.Equal(4411, status);
        // The owner's own listener is not the share's.
        await ReceivePacketsAsync(own, buffer);

        (await owner.DeleteAsync($"/api/v1/sessions/{id}")).EnsureSuccessStatusCode();
        clock.Restart();
        (status, _) = await WaitForCloseAsync(own, buffer);
        Assert.True(clock.Elapsed < ClosesWithin, $"the owner's audio socket closed after {clock.Elapsed}");
        Assert.Equal(4410, status);
    }

    [Fact]
    public async Task Revoking_a_viewer_ends_its_sound_and_sound_without_any_viewer_ends_after_the_grace()
    {
        var (ownerName, id, _) = await NewUserWithRunningSessionAsync("revoked", await ToneTemplateAsync(audio: true));
        using var owner = await fixture.Api.ClientForAsync(ownerName, WebFixture.UserPassword);
        var (viewer, listener) = await OpenViewerAndAudioAsync(owner, id);
        using var viewerDisposed = viewer;
        using var listenerDisposed = listener;
        var buffer = new byte[4096];
        await ReceivePacketsAsync(listener, buffer);

        // The owner drops the viewer (the viewers list's Drop): its page may keep the audio socket open, but the API closes it.
        var viewers = await (await owner.GetAsync($"/api/v1/sessions/{id}/viewers")).AssertJsonAsync<List<ViewerResponse>>(HttpStatusCode.OK);
        Assert.Equal(HttpStatusCode.NoContent, (await owner.DeleteAsync($"/api/v1/sessions/{id}/viewers/{Assert.Single(viewers).Id}")).StatusCode);
        var clock = Stopwatch.StartNew();
        var (status, _) = await WaitForCloseAsync(listener, buffer);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(8), $"the revoked viewer's audio socket closed after {clock.Elapsed}");
        Assert.Equal(4403, status);

        // An audio ticket used with no viewer at all: the sound plays for the grace a page needs to open its viewer, then stops.
        using var alone = await OpenAudioAsync(owner, id);
        clock.Restart();
        await ReceivePacketsAsync(alone, buffer);
        (status, _) = await WaitForCloseAsync(alone, buffer);
        Assert.Equal(4403, status);
        Assert.True(clock.Elapsed > TimeSpan.FromSeconds(5), $"the lone audio socket closed after {clock.Elapsed}, before its grace");
    }

    public void Dispose() => Directory.Delete(toneDirectory, recursive: true);

    private static async Task ReceivePacketsAsync(ClientWebSocket socket, byte[] buffer)
    {
        for (var i = 0; i < 10; i++)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            var message = await socket.ReceiveAsync(buffer, timeout.Token);
            Assert.Equal(WebSocketMessageType.Binary, message.MessageType);
            // One Opus packet: at most 1275 bytes.
            Assert.InRange(message.Count, 1, 1275);
        }
    }

    private static int AudioSocketCount(List<(IWebSocket, Stopwatch)> sockets)
    {
        lock (sockets)
        {
            return sockets.Count;
        }
    }

    private static async Task<(double Frequency, double Level)?> PeakAsync(IPage page) =>
        await page.EvaluateAsync<double[]?>(ReadPeak) is [var frequency, var level] ? (frequency, level) : null;

    private static async Task<bool> RunsAsync(string account, string program) =>
        (await ProcessRunner.RunAsync("pgrep", ["-u", account, "-x", program])).ExitCode == 0;

    /// <summary>A folder any account can read, with a 10 s 440 Hz WAV and a script that plays it over and over.</summary>
    private static string ToneDirectory()
    {
        var directory = Directory.CreateTempSubdirectory("streamspace-tone-").FullName;
        File.SetUnixFileMode(directory, (UnixFileMode)0b111_101_101);
        File.WriteAllBytes(Path.Combine(directory, "tone.wav"), Tone.Wav(440, 10));
        File.WriteAllText(Path.Combine(directory, "tone.sh"), $"while :; do paplay '{Path.Combine(directory, "tone.wav")}' || sleep 0.2; done\n");
        return directory;
    }

    private async Task<string> ToneTemplateAsync(bool audio)
    {
        using var admin = await fixture.Api.AdminClientAsync();
        var name = (audio ? "tone" : "mute") + Guid.NewGuid().ToString("N")[..6];
        var created = await admin.PostAsJsonAsync("/api/v1/templates",
            new { name, display_name = audio ? "A 440 Hz tone" : "A tone nobody hears", command = $"bash {Path.Combine(toneDirectory, "tone.sh")}", audio });
        var body = await created.AssertJsonAsync<TemplateBody>(HttpStatusCode.Created);
        Assert.Equal(audio, body.Audio);
        return name;
    }

    private async Task<(string Username, string Id, Guid UserId)> NewUserWithRunningSessionAsync(string prefix, string template)
    {
        var username = await fixture.NewUserAsync(prefix);
        using var api = await fixture.Api.ClientForAsync(username, WebFixture.UserPassword);
        var id = (await api.LaunchAsync(template)).Id;
        await api.WaitForStateAsync(id, SessionState.Running);
        return (username, id, await api.UserIdAsync());
    }

    private static async Task<string> AudioUrlAsync(HttpClient client, string id)
    {
        var ticket = await (await client.PostAsync($"/api/v1/sessions/{id}/connect", null)).AssertJsonAsync<ConnectResponse>(HttpStatusCode.OK);
        Assert.NotNull(ticket.AudioUrl);
        Assert.StartsWith($"/audio/{id}?ticket=", ticket.AudioUrl);
        return ticket.AudioUrl;
    }

    private async Task<ClientWebSocket> OpenAudioAsync(HttpClient client, string id) => await ConnectAsync(await AudioUrlAsync(client, id));

    /// <summary>A VNC viewer (past its handshake) and the audio socket beside it, from one connect, as the page opens them.</summary>
    private async Task<(RfbViewer Viewer, ClientWebSocket Audio)> OpenViewerAndAudioAsync(HttpClient client, string id)
    {
        var ticket = await (await client.PostAsync($"/api/v1/sessions/{id}/connect", null)).AssertJsonAsync<ConnectResponse>(HttpStatusCode.OK);
        var viewer = await RfbViewer.ConnectAsync(fixture.Api.BaseAddress, ticket.Url);
        await viewer.HandshakeAsync();
        return (viewer, await ConnectAsync(ticket.AudioUrl ?? throw new InvalidOperationException("the template has sound, so an audio URL")));
    }

    private async Task<ClientWebSocket> ConnectAsync(string path)
    {
        var socket = new ClientWebSocket();
        var url = new UriBuilder(new Uri(fixture.Api.BaseAddress, path)) { Scheme = "ws" }.Uri;
        await socket.ConnectAsync(url, new CancellationTokenSource(TimeSpan.FromSeconds(10)).Token);
        return socket;
    }

    private static async Task<(int? Status, string? Reason)> WaitForCloseAsync(ClientWebSocket socket, byte[] buffer)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        while ((await socket.ReceiveAsync(buffer, timeout.Token)).MessageType != WebSocketMessageType.Close)
        {
        }

        return ((int?)socket.CloseStatus, socket.CloseStatusDescription);
    }
}
