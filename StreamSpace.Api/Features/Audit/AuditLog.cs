using System.Security.Claims;
using System.Text.Json;
using Dapper;
using Npgsql;

namespace StreamSpace.Api.Features.Audit;

/// <summary>Who changed something: a signed-in user, an agent, or the system itself.</summary>
public sealed record Actor(Guid? Id, string Name)
{
    public static readonly Actor System = new(null, "system");

    public static Actor From(ClaimsPrincipal user) => new(user.UserId(), user.Identity?.Name ?? "unknown");
}

/// <summary>
/// Writes the audit trail. Callers pass the transaction that makes the change, so a change and its
/// audit row commit together or not at all.
/// </summary>
public static class AuditLog
{
    public static Task WriteAsync(this NpgsqlConnection connection, Actor actor, string action, string targetType, string? targetId,
        object? details = null, NpgsqlTransaction? transaction = null, CancellationToken cancellationToken = default) =>
        connection.ExecuteAsync(new CommandDefinition(
            """
            INSERT INTO audit_log (actor_id, actor, action, target_type, target_id, details)
            VALUES (@ActorId, @Actor, @Action, @TargetType, @TargetId, @Details::jsonb)
            """,
            new
            {
                ActorId = actor.Id,
                Actor = actor.Name,
                Action = action,
                TargetType = targetType,
                TargetId = targetId,
                // The API's own JSON, so details read alike wherever they appear.
                Details = JsonSerializer.Serialize(details ?? new { }, ApiJson.Options),
            },
            transaction, cancellationToken: cancellationToken));
}
