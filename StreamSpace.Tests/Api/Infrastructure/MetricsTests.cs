using System.Globalization;
using System.Net;
using StreamSpace.Contracts;
using StreamSpace.Tests.Api.Features.Agents;
using StreamSpace.Tests.Api.Features.Sessions;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Api.Infrastructure;

/// <summary>
/// <c>/metrics</c> on the API and on the agent's health port, as Prometheus scrapes them: parsed strictly as the text
/// exposition format, and moved by what a user does (an agent connects, a session launches).
/// Alone: OpenTelemetry listens to every meter of a name in the process, whichever host created it, so the API hosts of
/// other test classes would add their launches and agents to these figures (a process in production has one host).
/// </summary>
[Collection(MetricsCollection.Name)]
public sealed class MetricsTests
{
    [Fact]
    public async Task Api_and_agent_serve_prometheus_text_and_a_launch_moves_the_start_histogram_and_agents_connected()
    {
        await using var api = new ApiFactory(await SharedPostgres.CreateDatabaseAsync()).Start();
        using var scraper = new HttpClient { BaseAddress = api.BaseAddress };

        var before = await ScrapeAsync(scraper);
        Assert.Equal("gauge", before.Types["streamspace_agents_connected"]);
        Assert.Equal(0, before.Sum("streamspace_agents_connected"));

        var port = PostgresServer.FreePort();
        await using (var agent = await AgentHost.StartAsync(api.AgentHubUrl, "metrics-agent", await api.RegisterAgentAsync("metrics-agent"),
            settings: new Dictionary<string, string?> { ["AGENT_HEALTH_PORT"] = port.ToString(CultureInfo.InvariantCulture) }))
        {
            await agent.WaitUntilConnectedAsync();
            await Eventually.TrueAsync(async () => (await ScrapeAsync(scraper)).Sum("streamspace_agents_connected") == 1,
                TimeSpan.FromSeconds(10), "streamspace_agents_connected to count the agent");

            using var user = await api.NewUserClientAsync();
            var session = await user.LaunchAsync();
            await user.WaitForStateAsync(session.Id, SessionState.Running);

            var after = await ScrapeAsync(scraper);
            Assert.Equal("histogram", after.Types["streamspace_session_start_duration_seconds"]);
            Assert.Equal(1, after.Sum("streamspace_session_start_duration_seconds_count", ("platform", "local")));
            Assert.InRange(after.Sum("streamspace_session_start_duration_seconds_sum", ("platform", "local")), 0.001, 30);
            // The start command's ack and result were timed, and so is the agent's next heartbeat (every second here).
            Assert.True(after.Sum("streamspace_agent_command_duration_seconds_count", ("stage", "ack")) >= 1);
            Assert.True(after.Sum("streamspace_agent_command_duration_seconds_count", ("stage", "result")) >= 1);
            await Eventually.TrueAsync(async () => (await ScrapeAsync(scraper)).Sum("streamspace_agent_heartbeat_handling_duration_seconds_count") >= 1,
                TimeSpan.FromSeconds(10), "a heartbeat's handling to be timed");
            // Only the launch moved it: the agents gauge still counts one agent, and no start failed.
            Assert.Equal(1, after.Sum("streamspace_agents_connected"));
            Assert.Equal(0, after.Sum("streamspace_session_start_failures_total"));

            using var agentScraper = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
            var agentScrape = await ScrapeAsync(agentScraper);
            Assert.Equal(1, agentScrape.Sum("streamspace_agent_control_connected"));
            // The health port still answers its probes beside /metrics.
            Assert.Equal(HttpStatusCode.OK, (await agentScraper.GetAsync("/alive")).StatusCode);
        }

        await Eventually.TrueAsync(async () => (await ScrapeAsync(scraper)).Sum("streamspace_agents_connected") == 0,
            TimeSpan.FromSeconds(10), "streamspace_agents_connected to drop the stopped agent");
    }

    [Fact]
    public async Task A_launch_the_agent_reports_failed_counts_under_its_bucketed_reason_and_in_the_sessions_gauge()
    {
        await using var api = new ApiFactory(await SharedPostgres.CreateDatabaseAsync()).Start();
        using var scraper = new HttpClient { BaseAddress = api.BaseAddress };
        using var agent = await RawAgentSocket.ConnectAcceptedAsync(api.AgentHubUrl, "metrics-raw", await api.RegisterAgentAsync("metrics-raw"));
        await agent.SendHelloAsync(heartbeatSeconds: 30);
        Assert.IsType<WelcomeMessage>(await agent.ReceiveAsync(TimeSpan.FromSeconds(10)));

        using var user = await api.NewUserClientAsync();
        var session = await user.LaunchAsync();
        // The reason as the kubernetes platform words it; the label is its bucket, never the text (which names images).
        await agent.SendAsync(new SessionStateMessage(new ReportedSession(session.Id, SessionState.Failed,
            "image pull failed: Back-off pulling image \"registry.example.com/private/desktop:1\"")));
        await user.WaitForStateAsync(session.Id, SessionState.Failed);

        var scrape = await ScrapeAsync(scraper);
        Assert.Equal(1, scrape.Sum("streamspace_session_start_failures_total", ("reason", "image_pull")));
        Assert.Equal(1, scrape.Sum("streamspace_session_start_failures_total"));
        Assert.Equal(0, scrape.Sum("streamspace_session_start_duration_seconds_count"));
        Assert.DoesNotContain(scrape.Samples, s => s.Labels.Values.Any(v => v.Contains("registry.example.com", StringComparison.Ordinal)));

        // The sessions gauge follows within its 15 s count.
        await Eventually.TrueAsync(async () => (await ScrapeAsync(scraper)).Sum("streamspace_sessions", ("state", "failed"), ("platform", "local")) == 1,
            TimeSpan.FromSeconds(20), "streamspace_sessions to count the failed session");
    }

    private static async Task<PrometheusText> ScrapeAsync(HttpClient scraper)
    {
        var response = await scraper.GetAsync("/metrics");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.StartsWith("text/plain", response.Content.Headers.ContentType?.MediaType ?? "");
        return PrometheusText.Parse(await response.Content.ReadAsStringAsync());
    }
}

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class MetricsCollection
{
    public const string Name = "Metrics (alone in the process)";
}
