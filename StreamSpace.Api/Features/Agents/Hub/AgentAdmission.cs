using Microsoft.Net.Http.Headers;
using StreamSpace.Contracts;

namespace StreamSpace.Api.Features.Agents.Hub;

/// <summary>An agent's request that passed authentication: who it is and the hash of the key it presented.</summary>
public sealed record AdmittedAgent(string AgentId, string KeyHash);

/// <summary>
/// The hub's door, before the WebSocket upgrade: refuses unknown or revoked credentials with 401, and an address
/// that keeps being refused with 429. Also bounds the handshakes doing database work at once.
/// </summary>
public sealed class AgentAdmission(
    AgentStore store,
    RefusedAgentLog refusals,
    Infrastructure.FailureWindows failures,
    ApiSettings settings,
    ILogger<AgentAdmission> logger)
{
    /// <summary>
    /// Handshakes (authentication, hello and the first command delivery) doing database work at once. After an API
    /// restart thousands of agents reconnect within seconds; unbounded, their handshakes took every pooled connection,
    /// so heartbeats, users' requests and /health waited seconds for one. Queued here, they wait in memory instead.
    /// </summary>
    private const int ConcurrentHandshakes = 16;

    private readonly Infrastructure.FailureLimit refusedPerAddress = new("agent.address", settings.AgentAuthFailuresPerMinute, TimeSpan.FromMinutes(1));
    private readonly SemaphoreSlim handshakes = new(ConcurrentHandshakes, ConcurrentHandshakes);

    /// <summary>The authenticated agent, or null when the request was answered with a refusal.</summary>
    public async Task<AdmittedAgent?> AdmitAsync(HttpContext context)
    {
        // Before any database work: a flood of bad keys from one address must not take the handshake slots and the
        // pool that real agents' reconnects need. Only refusals count, so 10,000 agents behind one address reconnecting
        // after a restart are never limited.
        var address = Infrastructure.FailureWindows.ClientSubject(context.Connection.RemoteIpAddress);
        if (failures.Check(refusedPerAddress, address) is { Limited: true } limited)
        {
            if (limited.FirstRefusal)
            {
                logger.LogWarning("Refusing agent connections from {Remote} for {Seconds} s: {Failures} refused in a minute",
                    address, (int)Math.Ceiling(limited.RetryAfter.TotalSeconds), refusedPerAddress.Failures);
            }

            await Auth.AuthExtensions.TooManyAttempts("Too many refused agent connections from this address.", limited.RetryAfter).ExecuteAsync(context);
            return null;
        }

        var agentId = context.Request.Headers[AgentProtocol.AgentIdHeader].ToString();
        var authorization = context.Request.Headers[HeaderNames.Authorization].ToString();
        var key = authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) ? authorization["Bearer ".Length..].Trim() : "";
        if (agentId.Length == 0 || key.Length == 0)
        {
            failures.Fail(refusedPerAddress, address);
            await RefuseAsync(context, $"Missing agent credentials: send {AgentProtocol.AgentIdHeader} and Authorization: Bearer <AGENT_KEY>.");
            return null;
        }

        var keyHash = AgentKeys.Hash(key);
        switch (await HandshakeStepAsync(() => store.AuthenticateAsync(agentId, keyHash, context.RequestAborted), context.RequestAborted))
        {
            case AgentAuthentication.Rejected:
                logger.LogWarning("Refused agent connection from {Remote}: unknown agent id {AgentId} or wrong key", context.Connection.RemoteIpAddress, agentId);
                await refusals.RecordAsync(agentId, "unknown agent id or wrong key (401)", context.RequestAborted);
                failures.Fail(refusedPerAddress, address);
                await RefuseAsync(context, "Unknown agent id or wrong key.");
                return null;
            case AgentAuthentication.Revoked:
                logger.LogWarning("Refused agent {AgentId} from {Remote}: its credential is revoked", agentId, context.Connection.RemoteIpAddress);
                await refusals.RecordAsync(agentId, "its credential is revoked (401)", context.RequestAborted);
                failures.Fail(refusedPerAddress, address);
                await RefuseAsync(context, "This agent's credential is revoked; register it again with POST /api/v1/agents.");
                return null;
        }

        return new AdmittedAgent(agentId, keyHash);
    }

    /// <summary>Runs a step of a handshake that does database work, waiting for a slot first.</summary>
    public async Task<T> HandshakeStepAsync<T>(Func<Task<T>> step, CancellationToken cancellationToken)
    {
        await handshakes.WaitAsync(cancellationToken);
        try
        {
            return await step();
        }
        finally
        {
            handshakes.Release();
        }
    }

    private static Task RefuseAsync(HttpContext context, string detail) =>
        TypedResults.Problem(title: "Agent authentication failed.", detail: detail, statusCode: StatusCodes.Status401Unauthorized).ExecuteAsync(context);
}
