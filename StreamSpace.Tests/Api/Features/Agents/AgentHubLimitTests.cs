using System.Net;
using System.Net.WebSockets;
using StreamSpace.Api.Features.Agents.Hub;
using StreamSpace.Api.Infrastructure;
using StreamSpace.Contracts;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Api.Features.Agents;

/// <summary>Its own API with a low limit on refused agent connections per address.</summary>
public sealed class AgentHubLimitTests : IAsyncLifetime
{
    private ApiFactory api = null!;

    public async Task InitializeAsync() =>
        api = new ApiFactory(await SharedPostgres.CreateDatabaseAsync(), new Dictionary<string, string?> { ["AGENT_AUTH_FAILURES_PER_MINUTE"] = "5" }).Start();

    public async Task DisposeAsync() => await api.DisposeAsync();

    [Fact]
    public async Task A_flood_of_bad_keys_from_one_address_gets_429_while_a_real_agent_from_another_connects()
    {
        var key = await api.RegisterAgentAsync("limit-real");
        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 8; i++)
        {
            statuses.Add((await ConnectFromAsync(FromAddress.Second, "limit-real", $"ssak_bad-{i}")).Status);
        }

        Assert.Equal([.. Enumerable.Repeat(HttpStatusCode.Unauthorized, 5), .. Enumerable.Repeat(HttpStatusCode.TooManyRequests, 3)], statuses);
        var (status, retryAfter) = await ConnectFromAsync(FromAddress.Second, "limit-real", key);
        Assert.Equal(HttpStatusCode.TooManyRequests, status);
        Assert.True(retryAfter is > 0 and <= 60, $"Retry-After {retryAfter}");

        await using var agent = await AgentHost.StartAsync(api.AgentHubUrl, "limit-real", key);
        await agent.WaitUntilConnectedAsync();
        Assert.Equal("online", (await api.GetAgentAsync("limit-real")).GetProperty("status").GetString());
    }

    [Fact]
    public async Task Accepted_connections_do_not_count()
    {
        var key = await api.RegisterAgentAsync("limit-many");
        for (var i = 0; i < 10; i++)
        {
            var (socket, status) = await RawAgentSocket.ConnectAsync(api.AgentHubUrl, "limit-many", key);
            Assert.Equal(HttpStatusCode.SwitchingProtocols, status);
            socket!.Dispose();
        }
    }

    [Fact]
    public async Task Refusals_are_recorded_for_registered_agent_ids_only_so_made_up_ids_cannot_grow_the_record()
    {
        await api.RegisterAgentAsync("refused-real");
        Assert.Equal(HttpStatusCode.Unauthorized, (await ConnectFromAsync(FromAddress.Third, "refused-real", "ssak_wrong")).Status);
        Assert.Equal(HttpStatusCode.Unauthorized, (await ConnectFromAsync(FromAddress.Third, "made-up-id", "ssak_wrong")).Status);

        await using var connection = new Npgsql.NpgsqlConnection(api.ConnectionString);
        var recorded = (await Dapper.SqlMapper.QueryAsync<(string AgentId, int Count)>(connection, "SELECT agent_id, count FROM agent_refusals")).ToList();
        Assert.Equal([("refused-real", 1)], recorded);
    }

    private async Task<(HttpStatusCode Status, int? RetryAfter)> ConnectFromAsync(IPAddress from, string agentId, string key)
    {
        using var client = new ClientWebSocket();
        client.Options.CollectHttpResponseDetails = true;
        client.Options.SetRequestHeader(AgentProtocol.AgentIdHeader, agentId);
        client.Options.SetRequestHeader("Authorization", $"Bearer {key}");
        using var invoker = new HttpMessageInvoker(FromAddress.Handler(from));
        try
        {
            await client.ConnectAsync(api.AgentHubUrl, invoker, CancellationToken.None);
            return (client.HttpStatusCode, null);
        }
        catch (WebSocketException)
        {
            var retryAfter = client.HttpResponseHeaders?.TryGetValue("Retry-After", out var values) == true ? int.Parse(values.Single()) : (int?)null;
            return (client.HttpStatusCode, retryAfter);
        }
    }
}

/// <summary>The failure windows and the refused-agents record, on a clock the test moves.</summary>
public sealed class FailureRecordsTests
{
    private sealed class ManualClock : TimeProvider
    {
        public DateTimeOffset Now { get; set; } = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

        public override DateTimeOffset GetUtcNow() => Now;
    }

    [Fact]
    public void A_window_locks_after_its_failures_reports_the_lock_once_and_ends_with_the_window()
    {
        var clock = new ManualClock();
        var windows = new FailureWindows(clock);
        var limit = new FailureLimit("test", 2, TimeSpan.FromMinutes(1));
        windows.Fail(limit, "a");
        Assert.False(windows.Check(limit, "a").Limited);
        windows.Fail(limit, "a");

        clock.Now += TimeSpan.FromSeconds(20);
        var first = windows.Check(limit, "a");
        Assert.Equal(new FailureVerdict(true, TimeSpan.FromSeconds(40), true), first);
        Assert.False(windows.Check(limit, "a").FirstRefusal);
        Assert.False(windows.Check(limit, "b").Limited);

        clock.Now += TimeSpan.FromSeconds(40);
        Assert.False(windows.Check(limit, "a").Limited);
        windows.Fail(limit, "a");
        windows.Fail(limit, "a");
        Assert.True(windows.Check(limit, "a").FirstRefusal);
    }

    [Theory]
    [InlineData("192.0.2.7", "192.0.2.7")]
    [InlineData("::ffff:192.0.2.7", "192.0.2.7")]
    [InlineData("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64")]
    public void Per_address_limits_count_an_ipv6_client_by_its_64(string address, string subject) =>
        Assert.Equal(subject, FailureWindows.ClientSubject(IPAddress.Parse(address)));
}
