using System.Net;
using System.Net.Http.Json;
using StreamSpace.Contracts.Api;
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
            var created = await admin.PostAsJsonAsync("/api/v1/users", new CreateUserRequest($"audited-{i}", "password-123"), ApiJson.Options);
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        }

        var page = await (await admin.GetAsync("/api/v1/audit?action=user.created&actor=admin&page=1&page_size=2")).AssertJsonAsync<AuditPage>(HttpStatusCode.OK);
        Assert.Equal(3, page.Total);
        Assert.Equal(2, page.Items.Count);
        Assert.Equal("audited-2", page.Items[0].Details.GetProperty("username").GetString());
        Assert.Equal("user", page.Items[0].TargetType);
        Assert.Equal("admin", page.Items[0].Actor);

        var second = await (await admin.GetAsync("/api/v1/audit?action=user.created&actor=admin&page=2&page_size=2")).AssertJsonAsync<AuditPage>(HttpStatusCode.OK);
        Assert.Equal("audited-0", Assert.Single(second.Items).Details.GetProperty("username").GetString());
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
