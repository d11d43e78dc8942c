using System.Diagnostics;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text.Json;
using StreamSpace.Contracts.Tunnel;
using static StreamSpace.Bench.Figures;

namespace StreamSpace.Bench;

/// <summary>
/// A session's sound (issue 18): what one listener costs. A real session plays a continuous 440 Hz tone into its own
/// PulseAudio; listeners open the API's /audio WebSocket as the viewer does, and the section counts the Opus bytes
/// each receives per second and the CPU the agent (with its parec) and the API spend, against the same session with
/// nobody listening.
/// </summary>
public static class AudioBench
{
    private const string Template = "bench-tone";

    // A tone generated in the session (python3 is installed wherever ./streamspace runs), played through paplay at
    // real time: no file the session's account would need to read. chr(104) is 'h' (16-bit samples) without quotes.
    private const string ToneCommand =
        """sh -c 'python3 -c "import array,math,sys;a=array.array(chr(104),[int(9000*math.sin(2*math.pi*440*(i//2)/48000)) for i in range(96000)]).tobytes();[sys.stdout.buffer.write(a) for _ in iter(int,1)]" | paplay --raw --format=s16le --rate=48000 --channels=2'""";

    private static readonly TimeSpan PacketLimit = TimeSpan.FromSeconds(10);

    public static async Task RunAsync(BenchContext bench)
    {
        await bench.CreateTemplateAsync(Template, ToneCommand, []);
        var session = await bench.LaunchAsync(Template);
        var sessionId = session.GetProperty("id").GetString()!;
        try
        {
            var seconds = bench.Quick ? 3 : 8;
            // Before measuring: sound must flow at all.
            await using (var probe = await ListenerAsync(bench, sessionId))
            {
                await BenchContext.Within(probe.FirstPacketAsync(), PacketLimit, "a first Opus packet (is pulseaudio-utils installed?)");
            }

            bench.Line($"## Sound (a session playing a 440 Hz tone; Opus {AudioStreams.Bitrate / 1000} kbit/s target, {AudioStreams.FrameMilliseconds} ms packets; {seconds} s per repetition)");
            bench.Line("");
            bench.Line("| Listeners | Bytes/s per listener | kbit/s per listener | Packets/s per listener | First packet after open, ms | Agent CPU % (with parec) | API CPU % |");
            bench.Line("|---|---|---|---|---|---|---|");
            foreach (var listeners in new[] { 0, 1, 5 })
            {
                List<double> bytes = [], packets = [], first = [], agentCpu = [], apiCpu = [];
                for (var rep = 0; rep < bench.Repetitions; rep++)
                {
                    var sockets = new List<Listener>();
                    try
                    {
                        for (var i = 0; i < listeners; i++)
                        {
                            var listener = await ListenerAsync(bench, sessionId);
                            sockets.Add(listener);
                            first.Add((await BenchContext.Within(listener.FirstPacketAsync(), PacketLimit, "a first Opus packet")).TotalMilliseconds);
                        }

                        var agentBefore = bench.AgentProcess.CpuSeconds;
                        var apiBefore = bench.ApiProcess.CpuSeconds;
                        var clock = Stopwatch.StartNew();
                        var counting = sockets.Select(s => s.CountAsync(TimeSpan.FromSeconds(seconds))).ToList();
                        // With no listener, the same time passes with nobody counting.
                        await Task.WhenAll([.. counting, Task.Delay(TimeSpan.FromSeconds(seconds))]);
                        var counts = counting.Select(c => c.Result).ToList();
                        var elapsed = clock.Elapsed.TotalSeconds;
                        agentCpu.Add((bench.AgentProcess.CpuSeconds - agentBefore) / elapsed * 100);
                        apiCpu.Add((bench.ApiProcess.CpuSeconds - apiBefore) / elapsed * 100);
                        foreach (var (received, messages) in counts)
                        {
                            bytes.Add(received / elapsed);
                            packets.Add(messages / elapsed);
                        }
                    }
                    finally
                    {
                        foreach (var socket in sockets)
                        {
                            await socket.DisposeAsync();
                        }
                    }
                }

                bench.Line(listeners == 0
                    ? $"| 0 (the sound server alone) | — | — | — | — | {Figure(agentCpu, "0.0")} | {Figure(apiCpu, "0.0")} |"
                    : $"| {listeners} | {Figure(bytes, "0")} | {Figure([.. bytes.Select(b => b * 8 / 1000)], "0.0")} | {Figure(packets, "0.0")} | " +
                      $"{Figure(first, "0")} | {Figure(agentCpu, "0.0")} | {Figure(apiCpu, "0.0")} |");
            }

            bench.Line("");
            bench.Line("Bytes are the Opus packets' (one WebSocket message each), without WebSocket and TCP framing (2–4 bytes a message). " +
                "The agent captures only while someone listens: each listener runs its own parec and encoder, so its CPU grows with listeners; " +
                "with none it spends nothing on sound (the session's PulseAudio is the session's own cost).");
            bench.Line("");
        }
        finally
        {
            await bench.StopAsync(sessionId);
        }
    }

    private static async Task<Listener> ListenerAsync(BenchContext bench, string sessionId)
    {
        using var http = new HttpClient { BaseAddress = bench.Api };
        http.DefaultRequestHeaders.Authorization = new("Bearer", bench.Token);
        var ticket = await (await http.PostAsync($"/api/v1/sessions/{sessionId}/connect", null)).Content.ReadFromJsonAsync<JsonElement>();
        var path = ticket.TryGetProperty("audio_url", out var url) && url.GetString() is { } audio
            ? audio
            : throw new InvalidOperationException("the connect answer has no audio_url: is the template's audio on and the agent of protocol 4?");
        var socket = new ClientWebSocket();
        var opened = Stopwatch.StartNew();
        using var timeout = new CancellationTokenSource(PacketLimit);
        await socket.ConnectAsync(new Uri(new UriBuilder(bench.Api) { Scheme = "ws" }.Uri, path), timeout.Token);
        return new Listener(socket, opened);
    }

    private sealed class Listener(ClientWebSocket socket, Stopwatch opened) : IAsyncDisposable
    {
        private readonly byte[] buffer = new byte[FileStreams.MaxFrameBytes];

        public async Task<TimeSpan> FirstPacketAsync()
        {
            await ReceiveAsync(CancellationToken.None);
            return opened.Elapsed;
        }

        public async Task<(long Bytes, long Messages)> CountAsync(TimeSpan duration)
        {
            long bytes = 0, messages = 0;
            var clock = Stopwatch.StartNew();
            while (clock.Elapsed < duration)
            {
                bytes += await ReceiveAsync(CancellationToken.None);
                messages++;
            }

            return (bytes, messages);
        }

        private async Task<int> ReceiveAsync(CancellationToken cancellationToken)
        {
            var result = await socket.ReceiveAsync(buffer, cancellationToken);
            return result.MessageType == WebSocketMessageType.Close
                ? throw new InvalidOperationException($"the audio WebSocket closed: {socket.CloseStatus} {socket.CloseStatusDescription}")
                : result.Count;
        }

        public async ValueTask DisposeAsync()
        {
            try
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
                await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", timeout.Token);
            }
            catch (Exception e) when (e is WebSocketException or OperationCanceledException)
            {
                socket.Abort();
            }

            socket.Dispose();
        }
    }
}
