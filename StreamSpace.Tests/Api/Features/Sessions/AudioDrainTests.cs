using System.Net;
using System.Net.WebSockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using StreamSpace.Agent;
using StreamSpace.Agent.Tunnel;
using StreamSpace.Api.Features.Sessions.Vnc;
using StreamSpace.Contracts;
using StreamSpace.Contracts.Api;
using StreamSpace.Contracts.Tunnel;
using StreamSpace.Tests.Api.Features.Recordings;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Api.Features.Sessions;

/// <summary>A stopping replica closes the audio sockets it holds with 4307, as its viewers, so the page opens the sound again elsewhere.</summary>
public sealed class AudioDrainTests
{
    [Fact]
    public async Task A_stopping_replica_closes_its_audio_sockets_with_4307()
    {
        await using var api = new ApiFactory(await SharedPostgres.CreateDatabaseAsync()).Start();
        var (key, sessionId) = await RecordingAgent.RegisterWithSessionAsync(api, "audio-drain", "admin");
        using var agent = await RecordingAgent.ConnectAsync(api, "audio-drain", key, [sessionId]);
        using var admin = await api.AdminClientAsync();
        var ticket = await (await admin.PostAsync($"/api/v1/sessions/{sessionId}/connect", null)).AssertJsonAsync<ConnectResponse>(HttpStatusCode.OK);

        using var listener = new ClientWebSocket();
        var connecting = listener.ConnectAsync(new UriBuilder(new Uri(api.BaseAddress, ticket.AudioUrl!)) { Scheme = "ws" }.Uri, CancellationToken.None);
        // The hand-driven agent answers the API's request for the session's sound with one Opus-sized packet.
        var open = await agent.ReceiveAsync<StreamOpenMessage>(m => m.Purpose == AudioStreams.Purpose && m.SessionId == sessionId);
        var dialer = new DataDialer(new AgentSettings { ControlPlaneUrl = api.AgentHubUrl, AgentId = "audio-drain" }, TimeProvider.System, NullLogger<DataDialer>.Instance);
        await using var data = await dialer.ConnectAsync(open, CancellationToken.None);
        await FileStreams.WriteReplyAsync(data, new FileStreamReply(200), CancellationToken.None);
        await FileStreams.WriteFrameAsync(data, new byte[120], CancellationToken.None);
        await connecting;
        var buffer = new byte[4096];
        using (var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10)))
        {
            Assert.Equal(WebSocketMessageType.Binary, (await listener.ReceiveAsync(buffer, timeout.Token)).MessageType);
        }

        await api.Services.GetRequiredService<ViewerDrain>().CloseAllAsync(new CancellationTokenSource(TimeSpan.FromSeconds(10)).Token);
        using (var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10)))
        {
            while ((await listener.ReceiveAsync(buffer, timeout.Token)).MessageType != WebSocketMessageType.Close)
            {
            }
        }

        Assert.Equal(4307, (int?)listener.CloseStatus);
        Assert.Equal("replica stopping", listener.CloseStatusDescription);
    }
}
