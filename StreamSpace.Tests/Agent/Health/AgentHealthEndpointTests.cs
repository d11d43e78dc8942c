using System.Net;
using System.Text.Json;
using StreamSpace.Tests.Api.Features.Agents;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Agent.Health;

public sealed class AgentHealthEndpointTests(ApiFixture fixture) : IClassFixture<ApiFixture>
{
    [Fact]
    public async Task Health_is_ready_only_while_connected_and_says_why_not()
    {
        var port = PostgresServer.FreePort();
        var settings = new Dictionary<string, string?> { ["AGENT_HEALTH_PORT"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture) };
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };

        // Pointed at an unregistered id, the agent is refused: alive, but not ready, with the cause.
        await using (var refused = await AgentHost.StartAsync(fixture.Api.AgentHubUrl, "health-unknown", "not-a-key", settings: settings))
        {
            await Eventually.TrueAsync(async () =>
            {
                try
                {
                    return (await http.GetStringAsync("/alive")).Contains("healthy")
                        && (await http.GetAsync("/health")) is { StatusCode: HttpStatusCode.ServiceUnavailable } health
                        && (await health.Content.ReadAsStringAsync()).Contains("401");
                }
                catch (HttpRequestException)
                {
                    return false; // The probe listener is still starting.
                }
            }, TimeSpan.FromSeconds(10), "the refused agent's probes");
            var body = JsonDocument.Parse(await (await http.GetAsync("/health")).Content.ReadAsStringAsync()).RootElement;
            Assert.Equal("unhealthy", body.GetProperty("status").GetString());
            Assert.Contains("401", body.GetProperty("reason").GetString());
        }

        var key = await fixture.Api.RegisterAgentAsync("health-good");
        await using var agent = await AgentHost.StartAsync(fixture.Api.AgentHubUrl, "health-good", key, settings: settings);
        await agent.WaitUntilConnectedAsync();
        await Eventually.TrueAsync(async () =>
        {
            try
            {
                var healthy = await http.GetAsync("/health");
                return healthy.StatusCode == HttpStatusCode.OK
                    && await healthy.Content.ReadAsStringAsync() == """{"service":"streamspace-agent","status":"healthy"}""";
            }
            catch (HttpRequestException)
            {
                return false; // The probe listener is still starting.
            }
        }, TimeSpan.FromSeconds(10), "the connected agent to report healthy");
    }

    [Fact]
    public async Task Probers_that_hang_up_before_the_answer_do_not_stop_the_agent()
    {
        var port = PostgresServer.FreePort();
        var settings = new Dictionary<string, string?> { ["AGENT_HEALTH_PORT"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture) };
        var key = await fixture.Api.RegisterAgentAsync("health-hangups");
        await using var agent = await AgentHost.StartAsync(fixture.Api.AgentHubUrl, "health-hangups", key, settings: settings);
        await agent.WaitUntilConnectedAsync();
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        await Eventually.TrueAsync(async () => (await http.GetAsync("/alive")).IsSuccessStatusCode, TimeSpan.FromSeconds(10), "the probe listener");

        // Probers whose timeout passed: each sends its request and resets the connection before reading the answer.
        for (var i = 0; i < 50; i++)
        {
            using var socket = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
            await socket.ConnectAsync(IPAddress.Loopback, port);
            await socket.SendAsync("GET /health HTTP/1.1\r\nHost: agent\r\n\r\n"u8.ToArray());
            socket.LingerState = new System.Net.Sockets.LingerOption(true, 0);
            socket.Close();
        }

        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/health")).StatusCode);
        Assert.True(agent.Client.IsConnected);
    }
}
