using Dapper;
using Npgsql;
using StreamSpace.Contracts;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Api.Features.Recordings;

/// <summary>
/// A hand-driven agent of protocol 4 that reports recordings, as the real recorder does, and reads what the control
/// plane tells it. It says hello with the running sessions placed on it, so a reconnect keeps them running.
/// </summary>
public sealed class RecordingAgent(RawAgentSocket socket) : IDisposable
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);

    public static async Task<RecordingAgent> ConnectAsync(ApiFactory api, string agentId, string key, IReadOnlyList<string> runningSessions,
        int protocolVersion = AgentProtocol.Version, SessionState reported = SessionState.Running)
    {
        var socket = await RawAgentSocket.ConnectAcceptedAsync(api.AgentHubUrl, agentId, key);
        // Heartbeats a minute apart: the hub keeps the agent online for three of them, longer than any test here.
        await socket.SendAsync(new HelloMessage(protocolVersion, "local", "test", "raw", new AgentCapacity(5, runningSessions.Count), 60,
            [.. runningSessions.Select(id => new ReportedSession(id, reported))]));
        Assert.IsType<WelcomeMessage>(await socket.ReceiveAsync(Wait));
        return new RecordingAgent(socket);
    }

    public Task ReportAsync(RecordingMessage report) => socket.SendAsync(report);

    /// <summary>
    /// A heartbeat reporting the sessions running: the hub handles it only after every message received before it, so
    /// once it shows (the agent's last_heartbeat moves) those have been handled too.
    /// </summary>
    public Task SendHeartbeatAsync(IReadOnlyList<string> runningSessions) =>
        socket.SendAsync(new HeartbeatMessage(DateTimeOffset.UtcNow, new AgentCapacity(5, runningSessions.Count),
            [.. runningSessions.Select(id => new ReportedSession(id, SessionState.Running))]));

    /// <summary>The next message of type <typeparamref name="T"/> that matches, skipping any other.</summary>
    public async Task<T> ReceiveAsync<T>(Func<T, bool>? matches = null) where T : AgentMessage
    {
        var deadline = DateTime.UtcNow + Wait;
        while (true)
        {
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero)
            {
                throw new TimeoutException($"No {typeof(T).Name} arrived within {Wait.TotalSeconds:0}s.");
            }

            if (await socket.ReceiveAsync(left) is T message && (matches is null || matches(message)))
            {
                return message;
            }
        }
    }

    /// <summary>Registers the agent (its key) and gives it a running session of <paramref name="username"/>.</summary>
    public static async Task<(string Key, string SessionId)> RegisterWithSessionAsync(ApiFactory api, string agentId, string username)
    {
        var key = await StreamSpace.Tests.Api.Features.Agents.AgentTestData.RegisterAgentAsync(api, agentId);
        return (key, await RunningSessionAsync(api.ConnectionString, agentId, username));
    }

    /// <summary>Inserts a running session of <paramref name="username"/> placed on the (registered) agent, as a launch would leave it.</summary>
    public static async Task<string> RunningSessionAsync(string connectionString, string agentId, string username, bool record = false,
        string state = "running")
    {
        var sessionId = "sess-" + Guid.NewGuid().ToString("N")[..12];
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.ExecuteAsync(
            """
            INSERT INTO sessions (id, user_id, template, state, agent_id, platform, started_at, record)
            SELECT @sessionId, id, 'xterm', @state, @agentId, 'local', now(), @record FROM users WHERE username = @username
            """, new { sessionId, agentId, username, record, state });
        return sessionId;
    }

    public void Dispose() => socket.Dispose();
}
