using System.Net;
using Microsoft.Extensions.DependencyInjection;
using StreamSpace.Api.Features.Recordings;
using StreamSpace.Contracts;
using StreamSpace.Contracts.Api;
using StreamSpace.Tests.Api.Features.Agents;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Api.Features.Recordings;

/// <summary>An API whose recordings may take 1000 bytes in all, kept 30 days.</summary>
public sealed class RetentionFixture : IAsyncLifetime
{
    public const long MaxTotalBytes = 1_000;

    public ApiFactory Api { get; private set; } = null!;

    public async Task InitializeAsync() => Api = new ApiFactory(await SharedPostgres.CreateDatabaseAsync(), new Dictionary<string, string?>
    {
        ["RECORDING_MAX_TOTAL_BYTES"] = MaxTotalBytes.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["RECORDING_RETENTION"] = "30d",
    }).Start();

    public async Task DisposeAsync() => await Api.DisposeAsync();
}

public sealed class RecordingRetentionTests(RetentionFixture fixture) : IClassFixture<RetentionFixture>
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);

    private ApiFactory Api => fixture.Api;

    [Fact]
    public async Task Retention_deletes_the_oldest_finished_recordings_while_the_total_exceeds_the_limit_and_tells_their_agent()
    {
        var (key, sessionId) = await RecordingAgent.RegisterWithSessionAsync(Api, "ret-size", "admin");
        using var agent = await RecordingAgent.ConnectAsync(Api, "ret-size", key, [sessionId]);
        using var admin = await Api.AdminClientAsync();
        var now = DateTimeOffset.UtcNow;
        var oldest = await ReportAsync(admin, agent, sessionId, now.AddHours(-3), 600, ended: true);
        var older = await ReportAsync(admin, agent, sessionId, now.AddHours(-2), 300, ended: true);
        var running = await ReportAsync(admin, agent, sessionId, now.AddHours(-1), 300, ended: false);

        // 1200 bytes of 1000: the oldest alone brings it to 600. (Another replica's or the timer's sweep may run first.)
        await SweepAsync();
        var left = await ListAsync(admin);
        Assert.DoesNotContain(oldest, left);
        Assert.Contains(older, left);
        Assert.Contains(running, left);
        await agent.ReceiveAsync<DeleteRecordingMessage>(m => m.RecordingId == oldest);

        var entry = Assert.Single((await (await admin.GetAsync($"/api/v1/audit?action=recording.deleted&target_id={oldest}"))
            .AssertJsonAsync<AuditPage>(HttpStatusCode.OK)).Items);
        Assert.Equal("retention", entry.Actor);
        Assert.Contains("RECORDING_MAX_TOTAL_BYTES", entry.Details.GetProperty("reason").GetString());

        var report = await (await admin.GetAsync("/api/v1/admin/diagnostics")).AssertJsonAsync<DiagnosticsReport>(HttpStatusCode.OK);
        var storage = report.Checks.Single(c => c.Id == "recordings.storage");
        Assert.Equal(CheckStatus.Ok, storage.Status);
        Assert.Contains("600 B of RECORDING_MAX_TOTAL_BYTES 1000 B", storage.Evidence);
    }

    [Fact]
    public async Task Retention_deletes_finished_recordings_past_their_age_and_keeps_running_and_younger_ones()
    {
        var (key, sessionId) = await RecordingAgent.RegisterWithSessionAsync(Api, "ret-age", "admin");
        using var agent = await RecordingAgent.ConnectAsync(Api, "ret-age", key, [sessionId]);
        using var admin = await Api.AdminClientAsync();
        var now = DateTimeOffset.UtcNow;
        var aged = await ReportAsync(admin, agent, sessionId, now.AddDays(-40), 10, ended: true);
        var stillRunning = await ReportAsync(admin, agent, sessionId, now.AddDays(-40), 10, ended: false);
        var young = await ReportAsync(admin, agent, sessionId, now.AddDays(-29), 10, ended: true);

        await SweepAsync();
        var left = await ListAsync(admin);
        Assert.DoesNotContain(aged, left);
        Assert.Contains(stillRunning, left);
        Assert.Contains(young, left);
        await agent.ReceiveAsync<DeleteRecordingMessage>(m => m.RecordingId == aged);
        var entry = Assert.Single((await (await admin.GetAsync($"/api/v1/audit?action=recording.deleted&target_id={aged}"))
            .AssertJsonAsync<AuditPage>(HttpStatusCode.OK)).Items);
        Assert.Equal("retention", entry.Actor);
        Assert.Contains("RECORDING_RETENTION (30d)", entry.Details.GetProperty("reason").GetString());
    }

    /// <summary>
    /// Sweeps once here. Should the API's own timer be sweeping at that moment, this one skips and the timer's does the
    /// same work: the wait for its lock to go makes sure that sweep has committed too.
    /// </summary>
    private async Task SweepAsync()
    {
        var retention = Api.Services.GetRequiredService<RecordingRetention>();
        await Eventually.TrueAsync(async () => await retention.SweepAsync(CancellationToken.None) >= 0 && await NoSweepRunningAsync(), Wait, "a sweep");
    }

    private async Task<bool> NoSweepRunningAsync()
    {
        await using var connection = new Npgsql.NpgsqlConnection(Api.ConnectionString);
        return await Dapper.SqlMapper.ExecuteScalarAsync<long>(connection, """
            SELECT count(*) FROM pg_locks
            WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
            """) == 0;
    }

    private static async Task<List<Guid>> ListAsync(HttpClient admin) =>
        [.. (await (await admin.GetAsync(RecordingRoutes.List)).AssertJsonAsync<List<RecordingResponse>>(HttpStatusCode.OK)).Select(r => r.Id)];

    private static async Task<Guid> ReportAsync(HttpClient admin, RecordingAgent agent, string sessionId, DateTimeOffset startedAt, long bytes, bool ended)
    {
        var id = Guid.NewGuid();
        await agent.ReportAsync(new RecordingMessage(id, sessionId, startedAt, 60_000, bytes, ended ? startedAt.AddMinutes(1) : null));
        await Eventually.TrueAsync(async () => (await admin.GetAsync(RecordingRoutes.One(id))).StatusCode == HttpStatusCode.OK, Wait, "the recording to be listed");
        return id;
    }
}
