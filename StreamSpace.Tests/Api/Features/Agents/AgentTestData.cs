using System.Net;
using System.Net.Http.Json;
using Dapper;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using StreamSpace.Api.Features.Agents.Commands;
using StreamSpace.Api.Features.Agents.Hub;
using StreamSpace.Contracts;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Api.Features.Agents;

/// <summary>Registers agents through the admin API and queues commands the way the sessions feature does.</summary>
public static class AgentTestData
{
    public static async Task<string> RegisterAgentAsync(this ApiFactory api, string agentId)
    {
        using var admin = await api.AdminClientAsync();
        var created = await (await admin.PostAsJsonAsync("/api/v1/agents", new { id = agentId })).AssertJsonAsync(HttpStatusCode.Created);
        return created.GetProperty("key").GetString()!;
    }

    public static async Task<System.Text.Json.JsonElement> GetAgentAsync(this ApiFactory api, string agentId)
    {
        using var admin = await api.AdminClientAsync();
        return await (await admin.GetAsync($"/api/v1/agents/{agentId}")).AssertJsonAsync(HttpStatusCode.OK);
    }

    /// <summary>Creates a session row for the admin on the agent and queues a start_session for it (without delivering it).</summary>
    public static async Task<(string SessionId, Guid CommandId)> QueueStartSessionAsync(string connectionString, string agentId)
    {
        var sessionId = "sess-" + Guid.NewGuid().ToString("N")[..12];
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        var adminId = await connection.ExecuteScalarAsync<Guid>("SELECT id FROM users WHERE username = 'admin'", transaction: transaction);
        await connection.ExecuteAsync(
            "INSERT INTO sessions (id, user_id, template, state, agent_id, platform) VALUES (@sessionId, @adminId, 'xterm', 'pending', @agentId, 'local')",
            new { sessionId, adminId, agentId }, transaction);
        var commandId = await AgentCommandQueue.EnqueueAsync(connection, transaction, agentId, sessionId, CommandTypes.StartSession,
            new SessionCommandPayload(sessionId, adminId, "admin", Templates.Xterm), CancellationToken.None);
        await transaction.CommitAsync();
        return (sessionId, commandId);
    }

    public static Task DeliverAsync(this ApiFactory api, string agentId) =>
        api.Services.GetRequiredService<AgentHub>().DeliverCommandsAsync(agentId, CancellationToken.None);

    public static async Task<(string Status, int Attempts)> CommandAsync(string connectionString, Guid commandId)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        return await connection.QuerySingleAsync<(string, int)>("SELECT status, attempts FROM agent_commands WHERE id = @commandId", new { commandId });
    }

    public static async Task<(string State, string? FailureReason)> SessionAsync(string connectionString, string sessionId)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        return await connection.QuerySingleAsync<(string, string?)>("SELECT state, failure_reason FROM sessions WHERE id = @sessionId", new { sessionId });
    }
}
