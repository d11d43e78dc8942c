using System.Text;
using System.Text.Json;
using Dapper;
using FastEndpoints;
using Npgsql;

namespace StreamSpace.Api.Features.Audit.List;

public sealed class ListAuditRequest
{
    [QueryParam] public int Page { get; set; } = 1;
    [QueryParam, BindFrom("page_size")] public int PageSize { get; set; } = 50;
    [QueryParam] public string? Action { get; set; }
    [QueryParam] public string? Actor { get; set; }
    [QueryParam, BindFrom("target_type")] public string? TargetType { get; set; }
    [QueryParam, BindFrom("target_id")] public string? TargetId { get; set; }
}

public sealed class ListAuditValidator : Validator<ListAuditRequest>
{
    public ListAuditValidator()
    {
        RuleFor(x => x.Page).GreaterThanOrEqualTo(1);
        RuleFor(x => x.PageSize).InclusiveBetween(1, 500);
    }
}

/// <summary>The audit trail, newest first, filtered by action, actor and target.</summary>
public sealed class ListAuditEndpoint(NpgsqlDataSource dataSource) : Endpoint<ListAuditRequest, AuditPage>
{
    public override void Configure()
    {
        Get("audit");
        Roles(UserRoles.Admin);
        Summary(s => s.Summary = "Reads the audit log, newest first (admin only).");
    }

    public override async Task HandleAsync(ListAuditRequest request, CancellationToken cancellationToken)
    {
        var where = new StringBuilder("WHERE true");
        if (request.Action is not null) where.Append(" AND action = @Action");
        if (request.Actor is not null) where.Append(" AND actor = @Actor");
        if (request.TargetType is not null) where.Append(" AND target_type = @TargetType");
        if (request.TargetId is not null) where.Append(" AND target_id = @TargetId");

        var parameters = new
        {
            request.Action,
            request.Actor,
            request.TargetType,
            request.TargetId,
            Limit = request.PageSize,
            Offset = (request.Page - 1) * request.PageSize,
        };

        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        var total = await connection.ExecuteScalarAsync<long>(new CommandDefinition($"SELECT count(*) FROM audit_log {where}", parameters, cancellationToken: cancellationToken));
        var rows = await connection.QueryAsync<(long Id, DateTime At, Guid? ActorId, string Actor, string Action, string TargetType, string? TargetId, string Details)>(
            new CommandDefinition(
                $"""
                SELECT id, at, actor_id, actor, action, target_type, target_id, details::text
                FROM audit_log {where}
                ORDER BY at DESC, id DESC
                LIMIT @Limit OFFSET @Offset
                """, parameters, cancellationToken: cancellationToken));

        var items = rows.Select(r => new AuditEntryResponse(r.Id, new DateTimeOffset(r.At, TimeSpan.Zero), r.ActorId, r.Actor, r.Action,
            r.TargetType, r.TargetId, JsonDocument.Parse(r.Details).RootElement)).ToList();
        await Send.OkAsync(new AuditPage(items, total, request.Page, request.PageSize), cancellationToken);
    }
}
