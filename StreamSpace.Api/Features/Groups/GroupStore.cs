using Dapper;
using Npgsql;
using StreamSpace.Api.Features.Audit;
using StreamSpace.Api.Infrastructure;

namespace StreamSpace.Api.Features.Groups;

public enum GroupChange
{
    Done,
    NotFound,
    DuplicateName,
    UnknownTemplate,
    NotMember,
    TemplateNotAllowed,
    SoleGroupOfTemplates,
}

public sealed record GroupResult(GroupChange Change, GroupResponse? Group = null, string? Detail = null)
{
    /// <summary>The answer to a refused change, or null when it was done.</summary>
    public IResult? Refusal() => Change switch
    {
        GroupChange.Done => null,
        GroupChange.DuplicateName or GroupChange.SoleGroupOfTemplates => ApiProblem.Conflict(Detail!),
        _ => ApiProblem.NotFound(Detail!),
    };
}

/// <summary>
/// Groups, their members and the templates limited to them. Admin changes write their audit rows in the same
/// transaction. Nothing is cached: the rules read the tables on each request, so a change applies at once.
/// </summary>
public sealed class GroupStore(NpgsqlDataSource dataSource) : IUserGroups
{
    private static readonly Actor Provider = new(null, "identity provider");

    /// <summary>
    /// The templates limited to groups of which the user is in none, with those groups' names; no rows for an admin.
    /// The one statement of the catalog rule: the list and the launch both read it.
    /// </summary>
    private const string ClosedTemplatesSql =
        """
        SELECT tg.template, string_agg(g.name, ', ' ORDER BY g.name) AS groups
        FROM template_groups tg
        JOIN groups g ON g.id = tg.group_id
        LEFT JOIN group_members m ON m.group_id = tg.group_id AND m.user_id = @userId
        WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = @userId AND u.role = 'admin')
        GROUP BY tg.template
        HAVING count(m.user_id) = 0
        """;

    public async Task<IReadOnlySet<string>> ClosedTemplatesAsync(Guid userId, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        var rows = await connection.QueryAsync<string>(new CommandDefinition(
            $"SELECT template FROM ({ClosedTemplatesSql}) closed", new { userId }, cancellationToken: cancellationToken));
        return rows.ToHashSet(StringComparer.Ordinal);
    }

    public async Task<IReadOnlyDictionary<Guid, IReadOnlyList<string>>> GroupNamesAsync(IReadOnlyCollection<Guid> userIds, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        var rows = await connection.QueryAsync<(Guid UserId, string Name)>(new CommandDefinition(
            "SELECT m.user_id, g.name FROM group_members m JOIN groups g ON g.id = m.group_id WHERE m.user_id = ANY(@userIds) ORDER BY g.name",
            new { userIds = userIds.ToArray() }, cancellationToken: cancellationToken));
        return rows.GroupBy(r => r.UserId).ToDictionary(g => g.Key, g => (IReadOnlyList<string>)[.. g.Select(r => r.Name)]);
    }

    public async Task<string?> LaunchRefusalAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, Guid userId, string template,
        CancellationToken cancellationToken)
    {
        var groups = await connection.QuerySingleOrDefaultAsync<string?>(new CommandDefinition(
            $"SELECT groups FROM ({ClosedTemplatesSql}) closed WHERE template = @template",
            new { userId, template }, transaction, cancellationToken: cancellationToken));
        return groups is null ? null : $"The template '{template}' is limited to the groups {groups}, and the user is in none of them.";
    }

    public async Task<UserLimits> LimitsAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, Guid userId, CancellationToken cancellationToken) =>
        await connection.QuerySingleAsync<UserLimits>(new CommandDefinition(
            """
            SELECT max(g.max_sessions) AS max_sessions,
                   (array_agg(g.name ORDER BY g.max_sessions DESC NULLS LAST, g.name))[1] AS max_sessions_group,
                   max(g.max_cpu_millicores) AS max_cpu_millicores, max(g.max_memory_mib) AS max_memory_mib
            FROM group_members m JOIN groups g ON g.id = m.group_id
            WHERE m.user_id = @userId
            """, new { userId }, transaction, cancellationToken: cancellationToken));

    public async Task SetProviderGroupsAsync(Guid userId, IReadOnlyCollection<string> groupNames, CancellationToken cancellationToken)
    {
        var names = groupNames.Select(n => n.Trim().ToLowerInvariant()).Where(n => n.Length > 0).Distinct().ToArray();
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        var groupIds = (await connection.QueryAsync<Guid>(new CommandDefinition(
            "SELECT id FROM groups WHERE provider_managed AND lower(name) = ANY(@names)", new { names }, transaction, cancellationToken: cancellationToken))).ToArray();
        // A member already there by hand stays a hand-made member (DO NOTHING), so a later claim without the group keeps them.
        var added = await connection.QueryAsync<Guid>(new CommandDefinition(
            """
            INSERT INTO group_members (group_id, user_id, source)
            SELECT id, @userId, 'provider' FROM unnest(@groupIds) AS id
            ON CONFLICT (group_id, user_id) DO NOTHING
            RETURNING group_id
            """, new { userId, groupIds }, transaction, cancellationToken: cancellationToken));
        var removed = await connection.QueryAsync<Guid>(new CommandDefinition(
            "DELETE FROM group_members WHERE user_id = @userId AND source = 'provider' AND NOT (group_id = ANY(@groupIds)) RETURNING group_id",
            new { userId, groupIds }, transaction, cancellationToken: cancellationToken));
        foreach (var groupId in added)
        {
            await connection.WriteAsync(Provider, "group.member.added", "group", groupId.ToString(),
                new { UserId = userId, Source = GroupMemberSources.Provider }, transaction, cancellationToken);
        }

        foreach (var groupId in removed)
        {
            await connection.WriteAsync(Provider, "group.member.removed", "group", groupId.ToString(),
                new { UserId = userId, Source = GroupMemberSources.Provider }, transaction, cancellationToken);
        }

        await transaction.CommitAsync(cancellationToken);
    }

    public async Task<IReadOnlyList<GroupResponse>> ListAsync(CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return await ReadAsync(connection, null, null, cancellationToken);
    }

    public async Task<GroupResponse?> GetAsync(Guid id, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return (await ReadAsync(connection, null, id, cancellationToken)).SingleOrDefault();
    }

    public async Task<GroupResult> CreateAsync(Actor actor, GroupRequest request, CancellationToken cancellationToken)
    {
        var id = Guid.CreateVersion7();
        var quotas = request.Quotas ?? new GroupQuotas();
        return await ChangeAsync(id, async (connection, transaction) =>
        {
            await connection.ExecuteAsync(new CommandDefinition(
                """
                INSERT INTO groups (id, name, description, provider_managed, max_sessions, max_cpu_millicores, max_memory_mib)
                VALUES (@id, @Name, @Description, @ProviderManaged, @MaxSessions, @MaxCpuMillicores, @MaxMemoryMib)
                """,
                new { id, request.Name, Description = request.Description ?? "", request.ProviderManaged, quotas.MaxSessions, quotas.MaxCpuMillicores, quotas.MaxMemoryMib },
                transaction, cancellationToken: cancellationToken));
            await connection.WriteAsync(actor, "group.created", "group", id.ToString(), new { request.Name, request.ProviderManaged, Quotas = quotas }, transaction, cancellationToken);
            return null;
        }, request.Name, cancellationToken);
    }

    /// <summary>Renames the group, or changes its description or whether the provider manages it.</summary>
    public Task<GroupResult> UpdateAsync(Actor actor, Guid id, GroupRequest request, CancellationToken cancellationToken) =>
        ChangeAsync(id, async (connection, transaction) =>
        {
            var updated = await connection.ExecuteAsync(new CommandDefinition(
                "UPDATE groups SET name = @Name, description = @Description, provider_managed = @ProviderManaged, updated_at = now() WHERE id = @id",
                new { id, request.Name, Description = request.Description ?? "", request.ProviderManaged }, transaction, cancellationToken: cancellationToken));
            if (updated == 0)
            {
                return NoGroup(id);
            }

            await connection.WriteAsync(actor, "group.updated", "group", id.ToString(), new { request.Name, request.ProviderManaged }, transaction, cancellationToken);
            return null;
        }, request.Name, cancellationToken);

    public Task<GroupResult> SetQuotasAsync(Actor actor, Guid id, GroupQuotas quotas, CancellationToken cancellationToken) =>
        ChangeAsync(id, async (connection, transaction) =>
        {
            var updated = await connection.ExecuteAsync(new CommandDefinition(
                """
                UPDATE groups SET max_sessions = @MaxSessions, max_cpu_millicores = @MaxCpuMillicores, max_memory_mib = @MaxMemoryMib, updated_at = now()
                WHERE id = @id
                """, new { id, quotas.MaxSessions, quotas.MaxCpuMillicores, quotas.MaxMemoryMib }, transaction, cancellationToken: cancellationToken));
            if (updated == 0)
            {
                return NoGroup(id);
            }

            await connection.WriteAsync(actor, "group.updated", "group", id.ToString(), new { Quotas = quotas }, transaction, cancellationToken);
            return null;
        }, null, cancellationToken);

    /// <summary>
    /// Removes the group. Refused while it is the only group a template is limited to: the template would open to
    /// everyone, which an admin should choose by removing it from the group, not get as a side effect.
    /// </summary>
    public async Task<GroupResult> DeleteAsync(Actor actor, Guid id, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        var name = await connection.QuerySingleOrDefaultAsync<string?>(new CommandDefinition(
            "SELECT name FROM groups WHERE id = @id FOR UPDATE", new { id }, transaction, cancellationToken: cancellationToken));
        if (name is null)
        {
            return NoGroup(id);
        }

        var soleTemplates = (await connection.QueryAsync<string>(new CommandDefinition(
            """
            SELECT tg.template FROM template_groups tg
            WHERE tg.group_id = @id AND NOT EXISTS (SELECT 1 FROM template_groups other WHERE other.template = tg.template AND other.group_id <> @id)
            ORDER BY tg.template
            """, new { id }, transaction, cancellationToken: cancellationToken))).ToList();
        if (soleTemplates.Count > 0)
        {
            return new(GroupChange.SoleGroupOfTemplates, Detail:
                $"'{name}' is the only group allowed {string.Join(", ", soleTemplates)}; deleting it would open them to everyone. Remove them from the group first.");
        }

        await connection.ExecuteAsync(new CommandDefinition("DELETE FROM groups WHERE id = @id", new { id }, transaction, cancellationToken: cancellationToken));
        await connection.WriteAsync(actor, "group.deleted", "group", id.ToString(), new { Name = name }, transaction, cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return new(GroupChange.Done);
    }

    /// <summary>Adds a member by hand; one the provider added becomes hand-made, so the provider's claim no longer removes them.</summary>
    public Task<GroupResult> AddMemberAsync(Actor actor, Guid id, Guid userId, string username, CancellationToken cancellationToken) =>
        ChangeAsync(id, async (connection, transaction) =>
        {
            if (!await ExistsAsync(connection, transaction, id, cancellationToken))
            {
                return NoGroup(id);
            }

            await connection.ExecuteAsync(new CommandDefinition(
                """
                INSERT INTO group_members (group_id, user_id, source) VALUES (@id, @userId, 'manual')
                ON CONFLICT (group_id, user_id) DO UPDATE SET source = 'manual'
                """, new { id, userId }, transaction, cancellationToken: cancellationToken));
            await connection.WriteAsync(actor, "group.member.added", "group", id.ToString(),
                new { UserId = userId, Username = username, Source = GroupMemberSources.Manual }, transaction, cancellationToken);
            return null;
        }, null, cancellationToken);

    public Task<GroupResult> RemoveMemberAsync(Actor actor, Guid id, Guid userId, CancellationToken cancellationToken) =>
        ChangeAsync(id, async (connection, transaction) =>
        {
            if (!await ExistsAsync(connection, transaction, id, cancellationToken))
            {
                return NoGroup(id);
            }

            if (await connection.ExecuteAsync(new CommandDefinition(
                    "DELETE FROM group_members WHERE group_id = @id AND user_id = @userId", new { id, userId }, transaction, cancellationToken: cancellationToken)) == 0)
            {
                return new(GroupChange.NotMember, Detail: $"User {userId} is not a member of the group.");
            }

            await connection.WriteAsync(actor, "group.member.removed", "group", id.ToString(), new { UserId = userId }, transaction, cancellationToken);
            return null;
        }, null, cancellationToken);

    /// <summary>Limits the template to this group (and its other groups): from now on only their members and admins may launch it.</summary>
    public Task<GroupResult> AllowTemplateAsync(Actor actor, Guid id, string template, CancellationToken cancellationToken) =>
        ChangeAsync(id, async (connection, transaction) =>
        {
            if (!await ExistsAsync(connection, transaction, id, cancellationToken))
            {
                return NoGroup(id);
            }

            try
            {
                await connection.ExecuteAsync(new CommandDefinition(
                    "INSERT INTO template_groups (template, group_id) VALUES (@template, @id) ON CONFLICT DO NOTHING",
                    new { id, template }, transaction, cancellationToken: cancellationToken));
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.ForeignKeyViolation)
            {
                return new(GroupChange.UnknownTemplate, Detail: $"No template is named '{template}'.");
            }

            await connection.WriteAsync(actor, "group.template.allowed", "group", id.ToString(), new { Template = template }, transaction, cancellationToken);
            return null;
        }, null, cancellationToken);

    /// <summary>Takes the template from the group; a template left in no group is open to everyone again.</summary>
    public Task<GroupResult> RemoveTemplateAsync(Actor actor, Guid id, string template, CancellationToken cancellationToken) =>
        ChangeAsync(id, async (connection, transaction) =>
        {
            if (!await ExistsAsync(connection, transaction, id, cancellationToken))
            {
                return NoGroup(id);
            }

            if (await connection.ExecuteAsync(new CommandDefinition(
                    "DELETE FROM template_groups WHERE group_id = @id AND template = @template", new { id, template }, transaction, cancellationToken: cancellationToken)) == 0)
            {
                return new(GroupChange.TemplateNotAllowed, Detail: $"The template '{template}' is not limited to this group.");
            }

            await connection.WriteAsync(actor, "group.template.removed", "group", id.ToString(), new { Template = template }, transaction, cancellationToken);
            return null;
        }, null, cancellationToken);

    private static GroupResult NoGroup(Guid id) => new(GroupChange.NotFound, Detail: $"No group has id {id}.");

    /// <summary>
    /// Runs one change in a transaction; the change returns a refusal or null. Done, it answers with the group as it
    /// now is. A duplicate name (the unique index) is a refusal naming <paramref name="name"/>.
    /// </summary>
    private async Task<GroupResult> ChangeAsync(Guid id, Func<NpgsqlConnection, NpgsqlTransaction, Task<GroupResult?>> change, string? name,
        CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        try
        {
            if (await change(connection, transaction) is { } refusal)
            {
                return refusal;
            }
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UniqueViolation)
        {
            return new(GroupChange.DuplicateName, Detail: $"A group named '{name}' already exists.");
        }

        var group = (await ReadAsync(connection, transaction, id, cancellationToken)).Single();
        await transaction.CommitAsync(cancellationToken);
        return new(GroupChange.Done, group);
    }

    private static Task<bool> ExistsAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, Guid id, CancellationToken cancellationToken) =>
        connection.ExecuteScalarAsync<bool>(new CommandDefinition(
            "SELECT EXISTS (SELECT 1 FROM groups WHERE id = @id)", new { id }, transaction, cancellationToken: cancellationToken));

    /// <summary>Every group, or the one of <paramref name="id"/>, with its members and templates.</summary>
    private static async Task<IReadOnlyList<GroupResponse>> ReadAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, Guid? id,
        CancellationToken cancellationToken)
    {
        var filter = id is null ? "" : "WHERE g.id = @id";
        var groups = await connection.QueryAsync<GroupRow>(new CommandDefinition(
            $"SELECT g.id, g.name, g.description, g.provider_managed, g.max_sessions, g.max_cpu_millicores, g.max_memory_mib, g.created_at FROM groups g {filter} ORDER BY lower(g.name)",
            new { id }, transaction, cancellationToken: cancellationToken));
        var members = (await connection.QueryAsync<MemberRow>(new CommandDefinition(
            $"SELECT m.group_id, m.user_id, u.username, m.source FROM group_members m JOIN users u ON u.id = m.user_id JOIN groups g ON g.id = m.group_id {filter} ORDER BY lower(u.username)",
            new { id }, transaction, cancellationToken: cancellationToken))).ToLookup(m => m.GroupId);
        var templates = (await connection.QueryAsync<(Guid GroupId, string Template)>(new CommandDefinition(
            $"SELECT tg.group_id, tg.template FROM template_groups tg JOIN groups g ON g.id = tg.group_id {filter} ORDER BY tg.template",
            new { id }, transaction, cancellationToken: cancellationToken))).ToLookup(t => t.GroupId, t => t.Template);
        return [.. groups.Select(g => new GroupResponse(g.Id, g.Name, g.Description, g.ProviderManaged,
            new GroupQuotas(g.MaxSessions, g.MaxCpuMillicores, g.MaxMemoryMib),
            [.. members[g.Id].Select(m => new GroupMemberResponse(m.UserId, m.Username, m.Source))],
            [.. templates[g.Id]],
            new DateTimeOffset(g.CreatedAt, TimeSpan.Zero)))];
    }

    private sealed class GroupRow
    {
        public Guid Id { get; init; }
        public string Name { get; init; } = "";
        public string Description { get; init; } = "";
        public bool ProviderManaged { get; init; }
        public int? MaxSessions { get; init; }
        public int? MaxCpuMillicores { get; init; }
        public int? MaxMemoryMib { get; init; }
        public DateTime CreatedAt { get; init; }
    }

    private sealed class MemberRow
    {
        public Guid GroupId { get; init; }
        public Guid UserId { get; init; }
        public string Username { get; init; } = "";
        public string Source { get; init; } = "";
    }
}
