using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using StreamSpace.Tests.Api.Features.Agents;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Api.Features.Sessions;

/// <summary>The API, PostgreSQL and one local agent running real Xvnc sessions.</summary>
public sealed class SessionFixture : IAsyncLifetime
{
    public const string AgentId = "session-agent";

    public ApiFactory Api { get; private set; } = null!;

    public AgentHost Agent { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Api = new ApiFactory(await SharedPostgres.CreateDatabaseAsync(), new Dictionary<string, string?> { ["SESSION_QUOTA"] = "20" }).Start();
        Agent = await AgentHost.StartAsync(Api.AgentHubUrl, AgentId, await Api.RegisterAgentAsync(AgentId));
        await Agent.WaitUntilConnectedAsync();
    }

    public async Task DisposeAsync()
    {
        await Agent.DisposeAsync();
        await Api.DisposeAsync();
    }
}

public static class SessionClient
{
    public static async Task<JsonElement> LaunchAsync(this HttpClient client, string template = "xterm")
    {
        var response = await client.PostAsJsonAsync("/api/v1/sessions", new { template });
        var session = await response.AssertJsonAsync(HttpStatusCode.Accepted);
        Assert.Equal("pending", session.GetProperty("state").GetString());
        // The 202 speaks the same snake_case as every other answer.
        Assert.True(session.TryGetProperty("agent_id", out _) && session.TryGetProperty("failure_reason", out _), session.ToString());
        return session;
    }

    public static async Task<JsonElement> WaitForStateAsync(this HttpClient client, string id, string state, TimeSpan? timeout = null)
    {
        JsonElement session = default;
        await Eventually.TrueAsync(async () =>
        {
            session = await (await client.GetAsync($"/api/v1/sessions/{id}")).AssertJsonAsync(HttpStatusCode.OK);
            var current = session.GetProperty("state").GetString();
            if (current == "failed" && state != "failed")
            {
                throw new InvalidOperationException($"session {id} failed: {session.GetProperty("failure_reason")}");
            }

            return current == state;
        }, timeout ?? TimeSpan.FromSeconds(30), $"session {id} to be {state}");
        return session;
    }

    /// <summary>The signed-in user's id.</summary>
    public static async Task<Guid> UserIdAsync(this HttpClient client) =>
        (await (await client.GetAsync("/api/v1/auth/me")).AssertJsonAsync(HttpStatusCode.OK)).GetProperty("id").GetGuid();

    public static async Task<string> ConnectUrlAsync(this HttpClient client, string id)
    {
        var ticket = await (await client.PostAsync($"/api/v1/sessions/{id}/connect", null)).AssertJsonAsync(HttpStatusCode.OK);
        Assert.True(ticket.GetProperty("expires_at").GetDateTimeOffset() <= DateTimeOffset.UtcNow.AddSeconds(31));
        return ticket.GetProperty("url").GetString()!;
    }
}
