using Npgsql;
using StreamSpace.Contracts;

namespace StreamSpace.Api.Features.Sessions;

/// <summary>
/// The sessions placed on agents, as the Agents feature reads them and applies what the agents report. The Sessions
/// feature defines and implements it (<see cref="PlacedSessions"/>) for the Agents feature to use.
/// </summary>
public interface IPlacedSessions
{
    /// <summary>
    /// How many active sessions each agent has, by agent id, or only <paramref name="agentId"/>'s when given; an agent
    /// without any is absent.
    /// </summary>
    Task<IReadOnlyDictionary<string, int>> ActiveCountsAsync(string? agentId, CancellationToken cancellationToken);

    /// <summary>Applies the reported states in one transaction of their own.</summary>
    Task ApplyAsync(string agentId, IReadOnlyList<ReportedSession> sessions, CancellationToken cancellationToken);

    /// <summary>Applies one reported state in the caller's transaction; false when nothing changed or the report is stale.</summary>
    Task<bool> ApplyAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string agentId, ReportedSession session,
        CancellationToken cancellationToken);

    /// <summary>
    /// Fails the running and hibernated sessions placed on the agent that it does not report, with the reason users
    /// read; returns their ids. Pending and starting sessions are left: their start command is sent again.
    /// </summary>
    Task<IReadOnlyList<string>> FailLostAsync(string agentId, IReadOnlyList<ReportedSession> reported, string reason,
        CancellationToken cancellationToken);

    /// <summary>The reported sessions that are not this agent's to run: unknown here, ended, or placed on another agent.</summary>
    Task<IReadOnlyList<string>> UnownedAsync(string agentId, IReadOnlyList<ReportedSession> reported, CancellationToken cancellationToken);
}
