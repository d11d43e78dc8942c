using System.Globalization;
using System.Text;
using FastEndpoints;
using StreamSpace.Api.Features.Groups;
using StreamSpace.Api.Features.Sessions;

namespace StreamSpace.Api.Features.Usage.Report;

public sealed class UsageRequest
{
    [QueryParam] public DateTimeOffset? From { get; set; }
    [QueryParam] public DateTimeOffset? To { get; set; }
    [QueryParam, BindFrom("group_by")] public string GroupBy { get; set; } = "user";
    [QueryParam] public string Format { get; set; } = "json";
}

public sealed class UsageValidator : Validator<UsageRequest>
{
    public UsageValidator()
    {
        RuleFor(x => x.GroupBy).Must(g => g is "user" or "template" or "group")
            .WithMessage("group_by must be 'user', 'template' or 'group'.");
        RuleFor(x => x.Format).Must(f => f is "json" or "csv").WithMessage("format must be 'json' or 'csv'.");
        RuleFor(x => x).Must(x => x.From is not { } from || x.To is not { } to || from < to)
            .WithName("from").WithMessage("from must be before to.");
    }
}

/// <summary>
/// Session-hours and sessions per user, template or group in [from, to): only time in the running state counts, so a
/// hibernated session costs nothing. By default the last 30 days up to now (the injected clock).
/// </summary>
public sealed class UsageEndpoint(ISessionUsage usage, IUserGroups groups, TimeProvider time) : Endpoint<UsageRequest, UsageReport>
{
    private static readonly TimeSpan DefaultWindow = TimeSpan.FromDays(30);

    /// <summary>The key of users in no group when usage is grouped by group (parentheses: no group name is a bare word like it).</summary>
    public const string NoGroup = "(no group)";

    public override void Configure()
    {
        Get("admin/usage");
        Roles(UserRoles.Admin);
        Summary(s => s.Summary = "Session-hours (running time only) and session counts per user, template or group (a user's sessions count in each of the groups the user is in now); format=csv for a spreadsheet (admin only).");
    }

    public override async Task HandleAsync(UsageRequest request, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        // PostgreSQL's timestamptz takes UTC only; a time given with an offset is the same instant in UTC.
        var to = request.To?.ToUniversalTime() ?? now;
        var from = request.From?.ToUniversalTime() ?? (to > DateTimeOffset.MinValue + DefaultWindow ? to - DefaultWindow : DateTimeOffset.MinValue);
        if (from >= to)
        {
            AddError(x => x.From!, "from must be before to.");
            await Send.ErrorsAsync(cancellation: cancellationToken);
            return;
        }

        var rows = request.GroupBy switch
        {
            "template" => await usage.RunningHoursAsync(from, to, now, UsageGrouping.Template, cancellationToken),
            "group" => await PerGroupAsync(from, to, now, cancellationToken),
            _ => await usage.RunningHoursAsync(from, to, now, UsageGrouping.User, cancellationToken),
        };
        if (request.Format == "csv")
        {
            HttpContext.Response.Headers.ContentDisposition = $"attachment; filename=\"usage-{request.GroupBy}-{from:yyyyMMdd}-{to:yyyyMMdd}.csv\"";
            await Send.StringAsync(UsageCsv.Write(request.GroupBy, rows), contentType: "text/csv; charset=utf-8", cancellation: cancellationToken);
            return;
        }

        await Send.OkAsync(new UsageReport(from, to, request.GroupBy, rows), cancellationToken);
    }

    /// <summary>
    /// Each user's hours counted in every group the user is in now (membership has no history), so the groups' hours can
    /// add up to more than the total; users in no group under <see cref="NoGroup"/>.
    /// </summary>
    private async Task<IReadOnlyList<UsageRow>> PerGroupAsync(DateTimeOffset from, DateTimeOffset to, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var perUser = await usage.RunningHoursAsync(from, to, now, UsageGrouping.UserId, cancellationToken);
        var names = await groups.GroupNamesAsync([.. perUser.Select(r => Guid.Parse(r.Key))], cancellationToken);
        return [.. perUser
            .SelectMany(row => (names.GetValueOrDefault(Guid.Parse(row.Key)) ?? [NoGroup]).Select(group => (Group: group, Row: row)))
            .GroupBy(x => x.Group, StringComparer.Ordinal)
            .Select(g => new UsageRow(g.Key, g.Sum(x => x.Row.SessionHours), g.Sum(x => x.Row.Sessions)))
            .OrderByDescending(r => r.SessionHours).ThenBy(r => r.Key, StringComparer.Ordinal)];
    }
}

/// <summary>RFC 4180 CSV: a header row, CRLF line ends, and fields with a comma, quote or line break quoted (quotes doubled).</summary>
public static class UsageCsv
{
    public static string Write(string groupBy, IReadOnlyList<UsageRow> rows)
    {
        var csv = new StringBuilder();
        csv.Append(Field(groupBy)).Append(",session_hours,sessions\r\n");
        foreach (var row in rows)
        {
            csv.Append(Field(row.Key)).Append(',')
                .Append(row.SessionHours.ToString("0.####", CultureInfo.InvariantCulture)).Append(',')
                .Append(row.Sessions.ToString(CultureInfo.InvariantCulture)).Append("\r\n");
        }

        return csv.ToString();
    }

    private static string Field(string value)
    {
        // A spreadsheet runs a cell that starts with = + - or @ as a formula: a group or template name must stay text.
        var text = value.Length > 0 && value[0] is '=' or '+' or '-' or '@' ? "'" + value : value;
        return text.AsSpan().IndexOfAny(",\"\r\n") >= 0 ? "\"" + text.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : text;
    }
}
