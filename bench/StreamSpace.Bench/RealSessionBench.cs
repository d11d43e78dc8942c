using System.Diagnostics;
using static StreamSpace.Bench.Figures;

namespace StreamSpace.Bench;

/// <summary>
/// Framebuffer updates a viewer gets from a busy real desktop (TigerVNC's Xvnc under openbox), asking as noVNC does
/// (incremental, one at a time), directly and through (c). The screen changes colour with <c>xsetroot -solid</c>,
/// which needs no fonts, so pixels change on any machine <c>./streamspace</c> set up (an xterm printing text did not
/// where its font was missing, and the client then waited forever).
/// </summary>
public static class RealSessionBench
{
    private const double MB = 1e6;
    private const string Template = "bench-colours";

    /// <summary>How long one update may take before the section fails: the screen changes every few dozen milliseconds.</summary>
    private static readonly TimeSpan UpdateLimit = TimeSpan.FromSeconds(10);

    public static async Task RunAsync(BenchContext bench)
    {
        // Colours as #rrggbb, which Xlib parses itself: no colour database is needed either.
        await bench.CreateTemplateAsync(Template,
            """sh -c 'while :; do for c in "#1f3b57" "#d8d8d8" "#7a1f1f" "#1f7a3b" "#f0c020" "#202020"; do xsetroot -solid "$c"; sleep 0.04; done; done'""", []);
        var session = await bench.LaunchAsync(Template);
        var sessionId = session.GetProperty("id").GetString()!;
        try
        {
            var vncPort = session.GetProperty("platform_metadata").GetProperty("vnc_port").GetInt32();
            // The agent's copy of the session's VNC password: 8 arbitrary bytes, which the tunnel reads as Latin-1.
            var password = System.Text.Encoding.Latin1.GetString(await File.ReadAllBytesAsync(Path.Combine(bench.AgentData, "sessions", sessionId, "password")));
            var seconds = bench.Quick ? 3 : 6;

            // Before measuring: the screen must change at all, or every figure below would be a wait.
            await using (var probe = await BenchContext.Within(RfbClient.DirectAsync(vncPort, password), UpdateLimit, "the RFB handshake with the session's Xvnc"))
            {
                await BenchContext.Within(probe.FullScreenAsync(), UpdateLimit, "a first full-screen update");
                await BenchContext.Within(probe.IncrementalAsync(), UpdateLimit,
                    "a changed pixel (the session's `xsetroot -solid` loop draws nothing: is x11-xserver-utils installed?)");
            }

            bench.Line($"## 2. Real session (Xvnc 1280×800, the screen's colour changed by `xsetroot -solid` every 40 ms, {seconds} s per repetition)");
            bench.Line("");
            bench.Line("| Encoding | Direct RFB MB/s | Through (c) MB/s | Direct updates/s | Through (c) updates/s | (c) ÷ direct, MB/s | (c) ÷ direct, frame rate |");
            bench.Line("|---|---|---|---|---|---|---|");
            foreach (var (label, encoding) in new[] { ("ZRLE", RfbClient.Zrle), ("Raw", RfbClient.Raw) })
            {
                var direct = new List<(double Rate, double Updates)>();
                var tunnel = new List<(double Rate, double Updates)>();
                for (var rep = 0; rep < bench.Repetitions; rep++)
                {
                    direct.Add(await UpdatesAsync(BenchContext.Within(RfbClient.DirectAsync(vncPort, password), UpdateLimit, "the direct RFB handshake"), encoding, seconds));
                    tunnel.Add(await UpdatesAsync(BenchContext.Within(RfbClient.WebSocketAsync(await bench.VncUrlAsync(sessionId), null), UpdateLimit, "the RFB handshake through (c)"), encoding, seconds));
                }

                List<double> directRates = [.. direct.Select(d => d.Rate)], tunnelRates = [.. tunnel.Select(t => t.Rate)];
                List<double> directUpdates = [.. direct.Select(d => d.Updates)], tunnelUpdates = [.. tunnel.Select(t => t.Updates)];
                bench.Line($"| {label} | {Figure(directRates, "0.00")} | {Figure(tunnelRates, "0.00")} | {Figure(directUpdates, "0.0")} | {Figure(tunnelUpdates, "0.0")} | " +
                    $"{Median(tunnelRates) / Median(directRates):0.00} | {Median(tunnelUpdates) / Median(directUpdates):0.00} |");
            }

            bench.Line("");
            bench.Line("Each viewer asks for an incremental update of the whole screen as soon as the last one arrived, as noVNC does; " +
                "the figures count the FramebufferUpdate bytes on the wire and the updates received. Tight, noVNC's default, is not decoded by the bench client.");
            bench.Line("");
        }
        finally
        {
            await bench.StopAsync(sessionId);
        }
    }

    private static async Task<(double Rate, double Updates)> UpdatesAsync(Task<RfbClient> connecting, int encoding, int seconds)
    {
        await using var client = await connecting;
        await client.UseEncodingsAsync(encoding, RfbClient.Raw);
        await BenchContext.Within(client.FullScreenAsync(), UpdateLimit, "a full-screen update");
        long bytes = 0;
        var updates = 0;
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed.TotalSeconds < seconds)
        {
            bytes += await BenchContext.Within(client.IncrementalAsync(), UpdateLimit, "an incremental update of the changing screen");
            updates++;
        }

        return (bytes / clock.Elapsed.TotalSeconds / MB, updates / clock.Elapsed.TotalSeconds);
    }
}
