using System.Net;
using System.Net.Http.Json;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Api.Features.Audit;

public sealed class AuditTests(ApiFixture fixture) : IClassFixture<ApiFixture>
{
    [Fact]
    public async Task Changes_are_recorded_with_actor_and_target_and_read_back_paged_newest_first()
    {
        using var admin = await fixture.Api.AdminClientAsync();
        for (var i = 0; i < 3; i++)
        {
            var created = await admin.PostAsJsonAsync("/api/v1/users", new { username = $"audited-{i}", password = "password-123" });
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        }

        var page = await (await admin.GetAsync("/api/v1/audit?action=user.created&actor=admin&page=1&page_size=2")).AssertJsonAsync(HttpStatusCode.OK);
        Assert.Equal(3, page.GetProperty("total").GetInt64());
        var items = page.GetProperty("items").EnumerateArray().ToList();
        Assert.Equal(2, items.Count);
        Assert.Equal("audited-2", items[0].GetProperty("details").GetProperty("username").GetString());
        Assert.Equal("user", items[0].GetProperty("target_type").GetString());
        Assert.Equal("admin", items[0].GetProperty("actor").GetString());

        var second = await (await admin.GetAsync("/api/v1/audit?action=user.created&actor=admin&page=2&page_size=2")).AssertJsonAsync(HttpStatusCode.OK);
        Assert.Equal("audited-0", Assert.Single(second.GetProperty("items").EnumerateArray()).GetProperty("details").GetProperty("username").GetString());
    }

    [Fact]
    public async Task A_plain_user_cannot_read_the_audit_log()
    {
        using var user = await fixture.Api.NewUserClientAsync();
        await (await user.GetAsync("/api/v1/audit")).AssertProblemAsync(HttpStatusCode.Forbidden);
    }

    [Fact]
    public async Task An_out_of_range_page_size_is_a_400()
    {
        using var admin = await fixture.Api.AdminClientAsync();
        await (await admin.GetAsync("/api/v1/audit?page_size=100000")).AssertProblemAsync(HttpStatusCode.BadRequest);
    }
}
