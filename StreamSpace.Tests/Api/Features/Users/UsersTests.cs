using System.Net;
using System.Net.Http.Json;
using StreamSpace.Contracts.Api;
using StreamSpace.Tests.Api.Features.Sessions;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Api.Features.Users;

public sealed class UsersTests(ApiFixture fixture) : IClassFixture<ApiFixture>
{
    [Fact]
    public async Task A_plain_user_cannot_list_users_and_an_admin_can()
    {
        using var user = await fixture.Api.NewUserClientAsync("plain-lister");
        await (await user.GetAsync("/api/v1/users")).AssertProblemAsync(HttpStatusCode.Forbidden);

        using var admin = await fixture.Api.AdminClientAsync();
        var list = await admin.GetAsync("/api/v1/users");
        var names = (await list.AssertJsonAsync<List<UserResponse>>(HttpStatusCode.OK)).Select(u => u.Username).ToList();
        Assert.Contains("admin", names);
        Assert.Contains("plain-lister", names);
        // The wire itself: no hash in any shape.
        Assert.DoesNotContain("password_hash", await list.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_plain_user_cannot_create_change_or_delete_users()
    {
        using var user = await fixture.Api.NewUserClientAsync();
        await (await user.PostAsJsonAsync("/api/v1/users", new { username = "sneaky", password = "password-123" })).AssertProblemAsync(HttpStatusCode.Forbidden);
        await (await user.PatchAsJsonAsync($"/api/v1/users/{Guid.NewGuid()}", new { role = "admin" })).AssertProblemAsync(HttpStatusCode.Forbidden);
        await (await user.DeleteAsync($"/api/v1/users/{Guid.NewGuid()}")).AssertProblemAsync(HttpStatusCode.Forbidden);
    }

    [Fact]
    public async Task Creating_a_duplicate_username_in_another_case_is_a_conflict()
    {
        using var admin = await fixture.Api.AdminClientAsync();
        var first = await admin.PostAsJsonAsync("/api/v1/users", new { username = "Dup-User", password = "password-123" });
        Assert.Equal(HttpStatusCode.Created, first.StatusCode);
        var second = await admin.PostAsJsonAsync("/api/v1/users", new { username = "dup-user", password = "password-123" });
        await second.AssertProblemAsync(HttpStatusCode.Conflict);
    }

    [Fact]
    public async Task Invalid_users_get_400_naming_the_field()
    {
        using var admin = await fixture.Api.AdminClientAsync();
        var shortPassword = await admin.PostAsJsonAsync("/api/v1/users", new { username = "short-pw", password = "123" });
        Assert.Contains("password", (await shortPassword.AssertProblemAsync(HttpStatusCode.BadRequest)).ToString());
        var badRole = await admin.PostAsJsonAsync("/api/v1/users", new { username = "bad-role", password = "password-123", role = "root" });
        Assert.Contains("role", (await badRole.AssertProblemAsync(HttpStatusCode.BadRequest)).ToString());
    }

    [Fact]
    public async Task Promoting_a_user_to_admin_gives_them_admin_access_after_signing_in_again()
    {
        using var admin = await fixture.Api.AdminClientAsync();
        var created = await (await admin.PostAsJsonAsync("/api/v1/users", new { username = "promoted", password = "password-123" }))
            .AssertJsonAsync<UserResponse>(HttpStatusCode.Created);

        var promoted = await (await admin.PatchAsJsonAsync($"/api/v1/users/{created.Id}", new UpdateUserRequest(Role: UserRoles.Admin), ApiJson.OmitNulls))
            .AssertJsonAsync<UserResponse>(HttpStatusCode.OK);
        Assert.Equal(UserRoles.Admin, promoted.Role);

        using var asPromoted = await fixture.Api.ClientForAsync("promoted", "password-123");
        Assert.Equal(HttpStatusCode.OK, (await asPromoted.GetAsync("/api/v1/users")).StatusCode);
    }

    [Fact]
    public async Task The_last_active_admin_cannot_be_demoted_disabled_or_deleted()
    {
        await using var api = new ApiFactory(await SharedPostgres.CreateDatabaseAsync()).Start();
        using var admin = await api.AdminClientAsync();
        using var second = await api.NewUserClientAsync("second-admin", role: "admin");
        var adminId = await admin.UserIdAsync();
        var secondId = await second.UserIdAsync();

        // With two admins, one may step down; then the remaining one is protected.
        Assert.Equal(HttpStatusCode.OK, (await admin.PatchAsJsonAsync($"/api/v1/users/{secondId}", new { role = "user" })).StatusCode);
        using var stillAdmin = await api.AdminClientAsync();
        // The demoted admin's token stops working at once: its role claim no longer matches.
        await (await second.PatchAsJsonAsync($"/api/v1/users/{adminId}", new { role = "user" })).AssertProblemAsync(HttpStatusCode.Unauthorized);

        var demote = await stillAdmin.PatchAsJsonAsync($"/api/v1/users/{adminId}", new { role = "user" });
        Assert.Contains("last active admin", (await demote.AssertProblemAsync(HttpStatusCode.Conflict)).GetProperty("detail").GetString());
        await (await stillAdmin.PatchAsJsonAsync($"/api/v1/users/{adminId}", new { disabled = true })).AssertProblemAsync(HttpStatusCode.Conflict);
        await (await stillAdmin.DeleteAsync($"/api/v1/users/{adminId}")).AssertProblemAsync(HttpStatusCode.Conflict);
    }

    [Fact]
    public async Task Deleting_a_user_removes_their_access()
    {
        using var admin = await fixture.Api.AdminClientAsync();
        using var doomed = await fixture.Api.NewUserClientAsync("doomed");
        var id = await doomed.UserIdAsync();

        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"/api/v1/users/{id}")).StatusCode);
        await (await doomed.GetAsync("/api/v1/auth/me")).AssertProblemAsync(HttpStatusCode.Unauthorized);
        await (await admin.DeleteAsync($"/api/v1/users/{id}")).AssertProblemAsync(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task A_user_changes_their_own_password_only_with_the_current_one()
    {
        using var user = await fixture.Api.NewUserClientAsync("changer");
        var wrong = await user.PutAsJsonAsync("/api/v1/users/me/password", new { current_password = "not-it", new_password = "brand-new-password" });
        Assert.Contains("current", (await wrong.AssertProblemAsync(HttpStatusCode.BadRequest)).ToString(), StringComparison.OrdinalIgnoreCase);

        var right = await user.PutAsJsonAsync("/api/v1/users/me/password", new { current_password = "user-password-123", new_password = "brand-new-password" });
        Assert.Equal(HttpStatusCode.NoContent, right.StatusCode);
        using var again = await fixture.Api.ClientForAsync("changer", "brand-new-password");
        Assert.Equal(HttpStatusCode.OK, (await again.GetAsync("/api/v1/auth/me")).StatusCode);
    }

    [Fact]
    public async Task The_bootstrap_admin_password_is_managed_by_the_secret_not_the_api()
    {
        using var admin = await fixture.Api.AdminClientAsync();
        var change = await admin.PutAsJsonAsync("/api/v1/users/me/password", new { current_password = ApiFactory.AdminPassword, new_password = "something-else-1" });
        Assert.Contains("ADMIN_PASSWORD", (await change.AssertProblemAsync(HttpStatusCode.Conflict)).GetProperty("detail").GetString());
    }
}
