using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using StreamSpace.Contracts;
using StreamSpace.Contracts.Api;
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
    public static async Task<SessionResponse> LaunchAsync(this HttpClient client, string template = "xterm")
    {
        var response = await client.PostAsJsonAsync("/api/v1/sessions", new CreateSessionRequest(template), ApiJson.Options);
        var raw = await response.AssertJsonAsync(HttpStatusCode.Accepted);
        // The 202 speaks the same snake_case as every other answer.
        Assert.True(raw.TryGetProperty("agent_id", out _) && raw.TryGetProperty("failure_reason", out _), raw.ToString());
        var session = raw.Deserialize<SessionResponse>(ApiJson.Options)!;
        Assert.Equal(SessionState.Pending, session.State);
        return session;
    }

    public static async Task<SessionResponse> WaitForStateAsync(this HttpClient client, string id, SessionState state, TimeSpan? timeout = null)
    {
        SessionResponse? session = null;
        await Eventually.TrueAsync(async () =>
        {
            session = await (await client.GetAsync($"/api/v1/sessions/{id}")).AssertJsonAsync<SessionResponse>(HttpStatusCode.OK);
            if (session.State == SessionState.Failed && state != SessionState.Failed)
            {
                throw new InvalidOperationException($"session {id} failed: {session.FailureReason}");
            }

            return session.State == state;
        }, timeout ?? TimeSpan.FromSeconds(30), $"session {id} to be {state.ToName()}");
        return session!;
    }

    /// <summary>
    /// Creates an image template whose env has a plain value (<c>GREETING=hello</c>) and a Secret's key
    /// (<c>DB_PASSWORD</c> from Secret <c>db-creds</c>, key <c>password</c>).
    /// </summary>
    public static async Task CreateTemplateWithSecretEnvAsync(this HttpClient admin, string name, string displayName)
    {
        var created = await admin.PostAsJsonAsync("/api/v1/templates", new
        {
            name,
            display_name = displayName,
            image = "example/session:1",
            env = new Dictionary<string, object>
            {
                ["GREETING"] = "hello",
                ["DB_PASSWORD"] = new { secret_ref = new { name = "db-creds", key = "password" } },
            },
        });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
    }

    /// <summary>
    /// The states the session went through, oldest first, from the audit log (which an admin reads): a state that
    /// lasts less than a poll, such as running before a short idle timeout, is there all the same. A change of
    /// reason alone is not a new state.
    /// </summary>
    public static async Task<List<SessionState>> StateChangesAsync(this HttpClient admin, string id)
    {
        var audit = await (await admin.GetAsync($"/api/v1/audit?target_type=session&target_id={id}")).AssertJsonAsync<AuditPage>(HttpStatusCode.OK);
        var states = new List<SessionState>();
        foreach (var change in audit.Items.Reverse().Where(e => e.Details.TryGetProperty("to", out _)))
        {
            var to = SessionNames.ParseState(change.Details.GetProperty("to").GetString()!);
            if (states.Count == 0 || states[^1] != to)
            {
                states.Add(to);
            }
        }

        return states;
    }

    /// <summary>The signed-in user's id.</summary>
    public static async Task<Guid> UserIdAsync(this HttpClient client) =>
        (await (await client.GetAsync("/api/v1/auth/me")).AssertJsonAsync<UserResponse>(HttpStatusCode.OK)).Id;

    public static async Task<string> ConnectUrlAsync(this HttpClient client, string id)
    {
        var ticket = await (await client.PostAsync($"/api/v1/sessions/{id}/connect", null)).AssertJsonAsync<ConnectResponse>(HttpStatusCode.OK);
        Assert.True(ticket.ExpiresAt <= DateTimeOffset.UtcNow.AddSeconds(31));
        return ticket.Url;
    }
}
