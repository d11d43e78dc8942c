using System.Net;
using System.Net.Http.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Npgsql;
using StreamSpace.Api.Features.Sessions;
using StreamSpace.Api.Features.Usage.Report;
using StreamSpace.Contracts;
using StreamSpace.Contracts.Api;
using StreamSpace.Tests.Api.Features.Groups;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Api.Features.Usage;

/// <summary>
/// Session-hours from the sessions' state history, recorded with known times through the Sessions feature's own writer;
/// the API's clock is a fake set to <see cref="Now"/>, so a session still running counts up to it.
/// </summary>
public sealed class UsageFixture : IAsyncLifetime
{
    public static readonly DateTimeOffset Day = new(2026, 1, 10, 0, 0, 0, TimeSpan.Zero);
    public static readonly DateTimeOffset Now = Day.AddHours(8);

    private readonly FakeTimeProvider clock = new(Now);
    public ApiFactory Api { get; private set; } = null!;
    public HttpClient Admin { get; private set; } = null!;
    public string Alice { get; private set; } = null!;
    public string Bob { get; private set; } = null!;
    public string Engineering { get; } = GroupClient.UniqueName("engineering");
    public string Operations { get; } = GroupClient.UniqueName("operations");

    public async Task InitializeAsync()
    {
        Api = new ApiFactory(await SharedPostgres.CreateDatabaseAsync(), configureServices: services => services.AddSingleton<TimeProvider>(clock)).Start();
        Admin = await Api.AdminClientAsync();
        Alice = "alice-" + Guid.NewGuid().ToString("N")[..6];
        Bob = "bob-" + Guid.NewGuid().ToString("N")[..6];
        var aliceId = await NewUserAsync(Alice);
        var bobId = await NewUserAsync(Bob);
        // Alice is in two groups, Bob in none.
        await Admin.AddMemberAsync(await Admin.CreateGroupAsync(Engineering), Alice);
        await Admin.AddMemberAsync(await Admin.CreateGroupAsync(Operations), Alice);

        // Running 01:00-03:00, hibernated until 05:00 (not counted), running 05:00-06:00: 3 hours.
        await SessionAsync("usage-a", aliceId, "xterm",
            (SessionState.Pending, 0.9), (SessionState.Starting, 0.95), (SessionState.Running, 1), (SessionState.Hibernating, 3), (SessionState.Hibernated, 3.1),
            (SessionState.Waking, 5), (SessionState.Running, 5), (SessionState.Stopping, 6), (SessionState.Stopped, 6.05));
        // Running since 06:00 and still running at 08:00 (now): 2 hours.
        await SessionAsync("usage-b", aliceId, "desktop", (SessionState.Starting, 5.9), (SessionState.Running, 6));
        // Running from 23:00 the day before until 00:30: half an hour of it in the day.
        await SessionAsync("usage-c", bobId, "xterm", (SessionState.Running, -1), (SessionState.Stopping, 0.5), (SessionState.Stopped, 0.6));
        // Hibernated all day after running the day before: nothing.
        await SessionAsync("usage-d", bobId, "desktop", (SessionState.Running, -5), (SessionState.Hibernating, -4), (SessionState.Hibernated, -3.9));
    }

    public async Task DisposeAsync()
    {
        Admin.Dispose();
        await Api.DisposeAsync();
    }

    private async Task<Guid> NewUserAsync(string username) =>
        (await (await Admin.PostAsJsonAsync("/api/v1/users", new CreateUserRequest(username, "user-password-123"), ApiJson.Options))
            .AssertJsonAsync<UserResponse>(HttpStatusCode.Created)).Id;

    /// <summary>A session that entered each state at the given hour of <see cref="Day"/>.</summary>
    private async Task SessionAsync(string id, Guid userId, string template, params (SessionState State, double Hour)[] history)
    {
        await using var connection = new NpgsqlConnection(Api.ConnectionString);
        await connection.OpenAsync();
        await using var insert = new NpgsqlCommand("INSERT INTO sessions (id, user_id, template, state) VALUES (@id, @userId, @template, @state)", connection);
        insert.Parameters.AddWithValue("id", id);
        insert.Parameters.AddWithValue("userId", userId);
        insert.Parameters.AddWithValue("template", template);
        insert.Parameters.AddWithValue("state", history[^1].State.ToName());
        await insert.ExecuteNonQueryAsync();
        foreach (var (state, hour) in history)
        {
            await SessionStateHistory.RecordAsync(connection, null, id, state, Day.AddHours(hour), CancellationToken.None);
        }
    }
}

/// <summary>The usage report's answers for <see cref="UsageFixture"/>'s sessions.</summary>
public sealed class UsageTests(UsageFixture fixture) : IClassFixture<UsageFixture>
{
    private static readonly DateTimeOffset Day = UsageFixture.Day;
    private static readonly DateTimeOffset Now = UsageFixture.Now;
    private HttpClient Admin => fixture.Admin;

    private string Alice => fixture.Alice;

    private string Bob => fixture.Bob;

    [Fact]
    public async Task Session_hours_per_user_count_running_time_only()
    {
        var report = await ReportAsync($"from={Iso(Day)}&to={Iso(Day.AddDays(1))}&group_by=user");
        Assert.Equal([new UsageRow(Alice, 5, 2), new UsageRow(Bob, 0.5, 1)], Rounded(report.Rows));
    }

    [Fact]
    public async Task Session_hours_per_group_count_a_user_in_each_of_the_users_groups_and_the_rest_under_no_group()
    {
        var report = await ReportAsync($"from={Iso(Day)}&to={Iso(Day.AddDays(1))}&group_by=group");
        Assert.Equal(
            [.. new[] { new UsageRow(fixture.Engineering, 5, 2), new UsageRow(fixture.Operations, 5, 2) }.OrderBy(r => r.Key, StringComparer.Ordinal),
                new UsageRow(UsageEndpoint.NoGroup, 0.5, 1)],
            Rounded(report.Rows));
    }

    [Fact]
    public async Task A_window_given_with_an_offset_is_the_same_instants_in_utc()
    {
        var report = await ReportAsync($"from={Iso(Day.ToOffset(TimeSpan.FromHours(2)))}&to={Iso(Day.AddDays(1).ToOffset(TimeSpan.FromHours(-5)))}&group_by=user");
        Assert.Equal([new UsageRow(Alice, 5, 2), new UsageRow(Bob, 0.5, 1)], Rounded(report.Rows));
    }

    [Fact]
    public async Task Session_hours_per_template()
    {
        var report = await ReportAsync($"from={Iso(Day)}&to={Iso(Day.AddDays(1))}&group_by=template");
        Assert.Equal([new UsageRow("xterm", 3.5, 2), new UsageRow("desktop", 2, 1)], Rounded(report.Rows));
    }

    [Fact]
    public async Task Time_is_clipped_to_the_window()
    {
        // 02:00-07:00: a's 02:00-03:00 and 05:00-06:00, b's 06:00-07:00; c ended before.
        var report = await ReportAsync($"from={Iso(Day.AddHours(2))}&to={Iso(Day.AddHours(7))}&group_by=user");
        Assert.Equal([new UsageRow(Alice, 3, 2)], Rounded(report.Rows));
    }

    [Fact]
    public async Task Without_a_window_the_last_30_days_up_to_now_count()
    {
        var report = await ReportAsync("group_by=template");
        Assert.Equal(Now, report.To);
        Assert.Equal(Now.AddDays(-30), report.From);
        // d's hour before it hibernated counts now: xterm 3 + 1.5 (all of c), desktop 2 + 1.
        Assert.Equal([new UsageRow("xterm", 4.5, 2), new UsageRow("desktop", 3, 2)], Rounded(report.Rows));
    }

    [Fact]
    public async Task The_csv_export_has_a_header_and_a_row_per_key()
    {
        var response = await Admin.GetAsync($"/api/v1/admin/usage?from={Iso(Day)}&to={Iso(Day.AddDays(1))}&group_by=user&format=csv");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/csv", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("attachment", response.Content.Headers.ContentDisposition?.DispositionType);
        Assert.Equal($"user,session_hours,sessions\r\n{Alice},5,2\r\n{Bob},0.5,1\r\n", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public void Csv_fields_with_commas_quotes_or_line_breaks_are_quoted()
    {
        var csv = UsageCsv.Write("template", [new UsageRow("a,b", 1.25, 1), new UsageRow("say \"hi\"", 0.5, 2), new UsageRow("two\nlines", 2, 3)]);
        Assert.Equal("template,session_hours,sessions\r\n\"a,b\",1.25,1\r\n\"say \"\"hi\"\"\",0.5,2\r\n\"two\nlines\",2,3\r\n", csv);
    }

    [Fact]
    public void Csv_fields_a_spreadsheet_would_run_as_formulas_stay_text()
    {
        var csv = UsageCsv.Write("group", [new UsageRow("=HYPERLINK(\"x\")", 1, 1), new UsageRow("@sum", 1, 1), new UsageRow("-1", 1, 1)]);
        Assert.Equal("group,session_hours,sessions\r\n\"'=HYPERLINK(\"\"x\"\")\",1,1\r\n'@sum,1,1\r\n'-1,1,1\r\n", csv);
    }

    [Theory]
    [InlineData("group_by=department", "group_by must be 'user', 'template' or 'group'.")]
    [InlineData("group_by=user&format=xml", "format must be 'json' or 'csv'.")]
    [InlineData("from=2026-01-10T00:00:00Z&to=2026-01-09T00:00:00Z", "from must be before to.")]
    public async Task Bad_parameters_get_400_saying_what_is_wrong(string query, string message)
    {
        var problem = await (await Admin.GetAsync($"/api/v1/admin/usage?{query}")).AssertProblemAsync(HttpStatusCode.BadRequest);
        Assert.Contains(message, problem.ToString());
    }

    [Fact]
    public async Task A_plain_user_gets_403()
    {
        using var user = await fixture.Api.NewUserClientAsync();
        await (await user.GetAsync("/api/v1/admin/usage")).AssertProblemAsync(HttpStatusCode.Forbidden);
    }

    private async Task<UsageReport> ReportAsync(string query) =>
        await (await Admin.GetAsync($"/api/v1/admin/usage?{query}")).AssertJsonAsync<UsageReport>(HttpStatusCode.OK);

    private static List<UsageRow> Rounded(IEnumerable<UsageRow> rows) => [.. rows.Select(r => r with { SessionHours = Math.Round(r.SessionHours, 6) })];

    private static string Iso(DateTimeOffset at) => Uri.EscapeDataString(at.ToString("O"));
}
