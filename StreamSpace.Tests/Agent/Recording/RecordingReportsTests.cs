using System.Net.WebSockets;
using System.Text.Json;
using System.Threading.Channels;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using StreamSpace.Contracts;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Agent.Recording;

/// <summary>
/// What the control plane hears of recordings, on the agent's real WebSocket: a hub of the test's own answers hello
/// with welcome, sends record and delete requests, and reads the agent's reports.
/// </summary>
public sealed class RecordingReportsTests : IAsyncLifetime
{
    private FakeHub hub = null!;
    private AgentHost agent = null!;

    public async Task InitializeAsync()
    {
        hub = await FakeHub.StartAsync();
        agent = await AgentHost.StartAsync(hub.Url, "recording-reports-agent", "unused-key");
        await agent.WaitUntilConnectedAsync();
    }

    public async Task DisposeAsync()
    {
        await agent.DisposeAsync();
        await hub.DisposeAsync();
    }

    [Fact]
    public async Task A_record_request_is_reported_at_start_while_it_grows_and_once_deleted_with_its_end_and_again_after_a_reconnect()
    {
        var sessionId = "rec-" + Guid.NewGuid().ToString("N")[..8];
        var template = new SessionTemplate("xterm", null, "xterm", 5900, null, null, new Dictionary<string, string>(), false, 0, null);
        var payload = new SessionCommandPayload(sessionId, Guid.NewGuid(), "reported", template);
        var started = await agent.Commands.ExecuteAsync(new CommandMessage(Guid.NewGuid(), CommandTypes.StartSession, sessionId, JsonSerializer.SerializeToElement(payload, AgentProtocol.Json)));
        Assert.True(started.Success, started.Error);

        await hub.SendAsync(new RecordSessionMessage(sessionId));
        var first = await hub.NextRecordingAsync(r => r.SessionId == sessionId);
        Assert.Null(first.EndedAt);
        Assert.True(File.Exists(agent.Recordings.Files.PathOf(first.RecordingId)));

        // Progress every few seconds: the same recording, longer.
        var progress = await hub.NextRecordingAsync(r => r.RecordingId == first.RecordingId && r.DurationMs >= 4000, TimeSpan.FromSeconds(15));
        Assert.Null(progress.EndedAt);
        Assert.Equal(first.StartedAt, progress.StartedAt);
        Assert.True(progress.Bytes >= first.Bytes);

        await hub.SendAsync(new DeleteRecordingMessage(first.RecordingId));
        var final = await hub.NextRecordingAsync(r => r.RecordingId == first.RecordingId && r.EndedAt is not null);
        Assert.Equal(final.StartedAt.AddMilliseconds(final.DurationMs), final.EndedAt);
        await Eventually.TrueAsync(() => Task.FromResult(!File.Exists(agent.Recordings.Files.PathOf(first.RecordingId))), TimeSpan.FromSeconds(5), "the file to be deleted");

        // A control plane that lost the connection hears the end again on the next one.
        var second = await agent.Recordings.RecordAsync(sessionId);
        Assert.NotNull(second);
        await second.StopAsync();
        await hub.NextRecordingAsync(r => r.RecordingId == second.Id && r.EndedAt is not null);
        hub.DropConnection();
        var again = await hub.NextRecordingAsync(r => r.RecordingId == second.Id && r.EndedAt is not null, TimeSpan.FromSeconds(20));
        Assert.Equal(second.DurationMs, again.DurationMs);
    }

    /// <summary>The control plane's end of /agent/ws, as little of it as these tests need.</summary>
    private sealed class FakeHub : IAsyncDisposable
    {
        private readonly WebApplication app;
        private readonly Channel<RecordingMessage> recordings = Channel.CreateUnbounded<RecordingMessage>();
        private volatile WebSocket? socket;

        private FakeHub(WebApplication app) => this.app = app;

        public Uri Url { get; private set; } = null!;

        public static async Task<FakeHub> StartAsync()
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.WebHost.UseUrls("http://127.0.0.1:0");
            builder.Logging.SetMinimumLevel(LogLevel.Warning);
            var app = builder.Build();
            var hub = new FakeHub(app);
            app.UseWebSockets();
            app.Map("/agent/ws", hub.HandleAsync);
            await app.StartAsync();
            hub.Url = new Uri(new Uri(app.Urls.First().Replace("http", "ws", StringComparison.Ordinal)), "/agent/ws");
            return hub;
        }

        private async Task HandleAsync(HttpContext context)
        {
            using var accepted = await context.WebSockets.AcceptWebSocketAsync();
            var buffer = new byte[AgentProtocol.MaxTextFrameBytes];
            try
            {
                while (true)
                {
                    var result = await accepted.ReceiveAsync(buffer.AsMemory(), context.RequestAborted);
                    if (result.MessageType == WebSocketMessageType.Close)
                    {
                        return;
                    }

                    var count = result.Count;
                    while (!result.EndOfMessage)
                    {
                        result = await accepted.ReceiveAsync(buffer.AsMemory(count), context.RequestAborted);
                        count += result.Count;
                    }

                    switch (AgentProtocol.Deserialize(buffer.AsSpan(0, count)))
                    {
                        case HelloMessage:
                            await accepted.SendAsync(AgentProtocol.Serialize(new WelcomeMessage(AgentProtocol.Version, DateTimeOffset.UtcNow)), WebSocketMessageType.Text, true, context.RequestAborted);
                            socket = accepted;
                            break;
                        case RecordingMessage recording:
                            await recordings.Writer.WriteAsync(recording);
                            break;
                    }
                }
            }
            catch (Exception e) when (e is WebSocketException or OperationCanceledException)
            {
                // The test dropped the connection, or the agent stopped.
            }
        }

        public async Task SendAsync(AgentMessage message)
        {
            await Eventually.TrueAsync(() => Task.FromResult(socket is not null), TimeSpan.FromSeconds(10), "the agent's welcome");
            await socket!.SendAsync(AgentProtocol.Serialize(message), WebSocketMessageType.Text, true, CancellationToken.None);
        }

        /// <summary>Cuts the connection as a lost network would: no close handshake.</summary>
        public void DropConnection()
        {
            var dropped = socket!;
            socket = null;
            dropped.Abort();
        }

        /// <summary>The next report that matches, skipping the others; throws after the timeout (default 10 s).</summary>
        public async Task<RecordingMessage> NextRecordingAsync(Func<RecordingMessage, bool> matches, TimeSpan? timeout = null)
        {
            using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(10));
            try
            {
                while (true)
                {
                    var recording = await recordings.Reader.ReadAsync(cts.Token);
                    if (matches(recording))
                    {
                        return recording;
                    }
                }
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException("No matching recording report arrived in time.");
            }
        }

        public async ValueTask DisposeAsync() => await app.DisposeAsync();
    }
}
