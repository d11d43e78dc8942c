using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Dapper;
using Npgsql;
using StreamSpace.Contracts;
using StreamSpace.Contracts.Api;
using StreamSpace.Tests.Api.Features.Sessions;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Api.Features.Tokens;

/// <summary>Personal API tokens against the real API, PostgreSQL and a local agent running real sessions.</summary>
public sealed class ApiTokenTests(SessionFixture fixture) : IClassFixture<SessionFixture>
{
    private ApiFactory Api => fixture.Api;

    [Fact]
    public async Task A_read_token_lists_sessions_but_cannot_launch_one()
    {
        using var user = await Api.NewUserClientAsync();
        var created = await user.CreateTokenAsync(ApiTokenScopes.Read);
        Assert.StartsWith("ssp_", created.Token);
        using var script = Api.TokenClient(created.Token);

        await (await script.GetAsync("/api/v1/sessions")).AssertJsonAsync(HttpStatusCode.OK);
        await (await script.GetAsync("/api/v1/templates")).AssertJsonAsync(HttpStatusCode.OK);
        var launch = await (await script.PostAsJsonAsync("/api/v1/sessions", new CreateSessionRequest("xterm"), ApiJson.Options))
            .AssertProblemAsync(HttpStatusCode.Forbidden);
        Assert.Contains("'sessions' scope", launch.GetProperty("detail").GetString());
        var sessions = await (await user.GetAsync("/api/v1/sessions")).AssertJsonAsync(HttpStatusCode.OK);
        Assert.Equal(0, sessions.GetArrayLength());
    }

    [Fact]
    public async Task A_sessions_token_launches_hibernates_wakes_and_stops_a_session()
    {
        using var user = await Api.NewUserClientAsync();
        using var script = Api.TokenClient((await user.CreateTokenAsync(ApiTokenScopes.Sessions)).Token);

        var session = await script.LaunchAsync();
        await script.WaitForStateAsync(session.Id, SessionState.Running);
        Assert.Equal(HttpStatusCode.OK, (await script.PostAsync($"/api/v1/sessions/{session.Id}/connect", null)).StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, (await script.PostAsync($"/api/v1/sessions/{session.Id}/hibernate", null)).StatusCode);
        await script.WaitForStateAsync(session.Id, SessionState.Hibernated);
        Assert.Equal(HttpStatusCode.Accepted, (await script.PostAsync($"/api/v1/sessions/{session.Id}/wake", null)).StatusCode);
        await script.WaitForStateAsync(session.Id, SessionState.Running);
        Assert.Equal(HttpStatusCode.Accepted, (await script.DeleteAsync($"/api/v1/sessions/{session.Id}")).StatusCode);
        await script.WaitForStateAsync(session.Id, SessionState.Stopped);

        // The session is the token's user's, as if they had launched it themselves.
        var mine = await (await user.GetAsync($"/api/v1/sessions/{session.Id}")).AssertJsonAsync<SessionResponse>(HttpStatusCode.OK);
        Assert.Equal(SessionState.Stopped, mine.State);
    }

    [Fact]
    public async Task A_revoked_token_gets_401_on_the_next_request_and_stays_listed_as_revoked()
    {
        using var user = await Api.NewUserClientAsync();
        var created = await user.CreateTokenAsync(ApiTokenScopes.Read);
        using var script = Api.TokenClient(created.Token);
        await (await script.GetAsync("/api/v1/sessions")).AssertJsonAsync(HttpStatusCode.OK);

        Assert.Equal(HttpStatusCode.NoContent, (await user.DeleteAsync($"/api/v1/users/me/tokens/{created.Details.Id}")).StatusCode);

        var refused = await (await script.GetAsync("/api/v1/sessions")).AssertProblemAsync(HttpStatusCode.Unauthorized);
        Assert.Equal("The API token was revoked.", refused.GetProperty("detail").GetString());
        var listed = await (await user.GetAsync("/api/v1/users/me/tokens")).AssertJsonAsync<List<ApiTokenResponse>>(HttpStatusCode.OK);
        Assert.Equal("revoked", Assert.Single(listed, t => t.Id == created.Details.Id).State);
    }

    [Fact]
    public async Task An_admin_revokes_any_users_token_and_a_user_cannot_revoke_anothers()
    {
        using var owner = await Api.NewUserClientAsync();
        using var other = await Api.NewUserClientAsync();
        var created = await owner.CreateTokenAsync(ApiTokenScopes.Read);
        using var script = Api.TokenClient(created.Token);

        await (await other.DeleteAsync($"/api/v1/users/me/tokens/{created.Details.Id}")).AssertProblemAsync(HttpStatusCode.NotFound);
        await (await script.GetAsync("/api/v1/sessions")).AssertJsonAsync(HttpStatusCode.OK);

        using var admin = await Api.AdminClientAsync();
        var all = await (await admin.GetAsync("/api/v1/admin/tokens")).AssertJsonAsync<List<ApiTokenResponse>>(HttpStatusCode.OK);
        Assert.Contains(all, t => t.Id == created.Details.Id);
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"/api/v1/admin/tokens/{created.Details.Id}")).StatusCode);
        await (await script.GetAsync("/api/v1/sessions")).AssertProblemAsync(HttpStatusCode.Unauthorized);
        await (await owner.GetAsync("/api/v1/admin/tokens")).AssertProblemAsync(HttpStatusCode.Forbidden);
    }

    [Fact]
    public async Task A_disabled_users_token_gets_401()
    {
        var username = "tokenuser-" + Guid.NewGuid().ToString("N")[..8];
        using var user = await Api.NewUserClientAsync(username);
        using var script = Api.TokenClient((await user.CreateTokenAsync(ApiTokenScopes.Read)).Token);
        await (await script.GetAsync("/api/v1/auth/me")).AssertJsonAsync(HttpStatusCode.OK);

        using var admin = await Api.AdminClientAsync();
        var id = (await (await user.GetAsync("/api/v1/auth/me")).AssertJsonAsync<UserResponse>(HttpStatusCode.OK)).Id;
        (await admin.PatchAsJsonAsync($"/api/v1/users/{id}", new UpdateUserRequest(Disabled: true), ApiJson.Options)).EnsureSuccessStatusCode();

        var refused = await (await script.GetAsync("/api/v1/auth/me")).AssertProblemAsync(HttpStatusCode.Unauthorized);
        Assert.Equal("The user is disabled.", refused.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task A_password_change_ends_the_users_tokens_as_it_ends_their_other_sign_ins()
    {
        using var user = await Api.NewUserClientAsync();
        var created = await user.CreateTokenAsync(ApiTokenScopes.Read);
        using var script = Api.TokenClient(created.Token);
        await (await script.GetAsync("/api/v1/sessions")).AssertJsonAsync(HttpStatusCode.OK);

        (await user.PutAsJsonAsync("/api/v1/users/me/password", new ChangePasswordRequest("user-password-123", "a-new-password-456"), ApiJson.Options))
            .EnsureSuccessStatusCode();

        await (await script.GetAsync("/api/v1/sessions")).AssertProblemAsync(HttpStatusCode.Unauthorized);
        using var admin = await Api.AdminClientAsync();
        var all = await (await admin.GetAsync("/api/v1/admin/tokens")).AssertJsonAsync<List<ApiTokenResponse>>(HttpStatusCode.OK);
        Assert.Equal("signed_out", Assert.Single(all, t => t.Id == created.Details.Id).State);
    }

    [Fact]
    public async Task A_token_cannot_create_list_or_revoke_tokens_change_the_password_or_refresh_into_a_jwt()
    {
        using var admin = await Api.AdminClientAsync();
        var created = await admin.CreateTokenAsync(ApiTokenScopes.Read, ApiTokenScopes.Sessions, ApiTokenScopes.Admin);
        using var script = Api.TokenClient(created.Token);

        await (await script.PostAsJsonAsync("/api/v1/users/me/tokens", new CreateApiTokenRequest("child", 1, [ApiTokenScopes.Read]), ApiJson.Options))
            .AssertProblemAsync(HttpStatusCode.Forbidden);
        await (await script.GetAsync("/api/v1/users/me/tokens")).AssertProblemAsync(HttpStatusCode.Forbidden);
        await (await script.GetAsync("/api/v1/admin/tokens")).AssertProblemAsync(HttpStatusCode.Forbidden);
        await (await script.DeleteAsync($"/api/v1/users/me/tokens/{created.Details.Id}")).AssertProblemAsync(HttpStatusCode.Forbidden);
        await (await script.DeleteAsync($"/api/v1/admin/tokens/{created.Details.Id}")).AssertProblemAsync(HttpStatusCode.Forbidden);
        await (await script.PutAsJsonAsync("/api/v1/users/me/password",
            new ChangePasswordRequest(ApiFactory.AdminPassword, "another-password-123"), ApiJson.Options)).AssertProblemAsync(HttpStatusCode.Forbidden);
        await (await script.PostAsync("/api/v1/auth/refresh", null)).AssertProblemAsync(HttpStatusCode.Forbidden);
        await (await script.PostAsync("/api/v1/auth/logout-all", null)).AssertProblemAsync(HttpStatusCode.Forbidden);

        // Still standing: none of the refusals touched it.
        await (await script.GetAsync("/api/v1/users")).AssertJsonAsync(HttpStatusCode.OK);
        var mine = await (await admin.GetAsync("/api/v1/users/me/tokens")).AssertJsonAsync<List<ApiTokenResponse>>(HttpStatusCode.OK);
        Assert.Equal("active", Assert.Single(mine, t => t.Id == created.Details.Id).State);
    }

    [Fact]
    public async Task The_admin_scope_is_for_admins_only_and_admin_endpoints_need_it()
    {
        using var user = await Api.NewUserClientAsync();
        var refused = await (await user.PostAsJsonAsync("/api/v1/users/me/tokens",
            new CreateApiTokenRequest("root", 30, [ApiTokenScopes.Admin]), ApiJson.Options)).AssertProblemAsync(HttpStatusCode.Forbidden);
        Assert.Contains("admin", refused.GetProperty("detail").GetString());

        using var admin = await Api.AdminClientAsync();
        using var adminRead = Api.TokenClient((await admin.CreateTokenAsync(ApiTokenScopes.Read, ApiTokenScopes.Sessions)).Token);
        using var adminAdmin = Api.TokenClient((await admin.CreateTokenAsync(ApiTokenScopes.Admin)).Token);
        await (await adminRead.GetAsync("/api/v1/users")).AssertProblemAsync(HttpStatusCode.Forbidden);
        await (await adminRead.GetAsync("/api/v1/admin/usage")).AssertProblemAsync(HttpStatusCode.Forbidden);
        await (await adminAdmin.GetAsync("/api/v1/users")).AssertJsonAsync(HttpStatusCode.OK);
        await (await adminAdmin.GetAsync("/api/v1/admin/usage")).AssertJsonAsync(HttpStatusCode.OK);
        // admin alone is not sessions: launching needs its own scope.
        await (await adminAdmin.PostAsJsonAsync("/api/v1/sessions", new CreateSessionRequest("xterm"), ApiJson.Options))
            .AssertProblemAsync(HttpStatusCode.Forbidden);
    }

    [Fact]
    public async Task An_admins_token_without_the_admin_scope_reaches_only_the_admins_own_sessions()
    {
        using var user = await Api.NewUserClientAsync();
        var theirs = await user.LaunchAsync();
        using var admin = await Api.AdminClientAsync();
        using var adminSessions = Api.TokenClient((await admin.CreateTokenAsync(ApiTokenScopes.Read, ApiTokenScopes.Sessions)).Token);
        using var adminAdmin = Api.TokenClient((await admin.CreateTokenAsync(ApiTokenScopes.Read, ApiTokenScopes.Sessions, ApiTokenScopes.Admin)).Token);

        var listed = await (await adminSessions.GetAsync("/api/v1/sessions")).AssertJsonAsync<List<SessionResponse>>(HttpStatusCode.OK);
        Assert.DoesNotContain(listed, s => s.Id == theirs.Id);
        await (await adminSessions.GetAsync($"/api/v1/sessions/{theirs.Id}")).AssertProblemAsync(HttpStatusCode.NotFound);
        await (await adminSessions.DeleteAsync($"/api/v1/sessions/{theirs.Id}")).AssertProblemAsync(HttpStatusCode.NotFound);

        // With the admin scope the same admin's token acts as the admin does.
        Assert.Contains(await (await adminAdmin.GetAsync("/api/v1/sessions")).AssertJsonAsync<List<SessionResponse>>(HttpStatusCode.OK), s => s.Id == theirs.Id);
        Assert.Equal(HttpStatusCode.Accepted, (await adminAdmin.DeleteAsync($"/api/v1/sessions/{theirs.Id}")).StatusCode);
    }

    [Fact]
    public async Task An_admin_token_cannot_create_users_or_set_passwords_which_would_outlive_its_revocation()
    {
        using var admin = await Api.AdminClientAsync();
        using var adminAdmin = Api.TokenClient((await admin.CreateTokenAsync(ApiTokenScopes.Admin)).Token);
        await (await adminAdmin.PostAsJsonAsync("/api/v1/users", new CreateUserRequest("tok" + Guid.NewGuid().ToString("N")[..6], "user-password-123", UserRoles.Admin), ApiJson.Options))
            .AssertProblemAsync(HttpStatusCode.Forbidden);

        using var user = await Api.NewUserClientAsync();
        var userId = await user.UserIdAsync();
        var refused = await (await adminAdmin.PatchAsJsonAsync($"/api/v1/users/{userId}", new { password = "another-password-123" }))
            .AssertProblemAsync(HttpStatusCode.Forbidden);
        Assert.Contains("cannot set passwords", refused.GetProperty("title").GetString());
        // Roles are an admin token's to change.
        await (await adminAdmin.PatchAsJsonAsync($"/api/v1/users/{userId}", new { disabled = true })).AssertJsonAsync(HttpStatusCode.OK);
    }

    [Fact]
    public async Task Bad_requests_to_create_a_token_get_400()
    {
        using var user = await Api.NewUserClientAsync();
        foreach (var request in new CreateApiTokenRequest[]
        {
            new("", 30, [ApiTokenScopes.Read]),
            new("too long", 366, [ApiTokenScopes.Read]),
            new("no expiry", 0, [ApiTokenScopes.Read]),
            new("no scope", 30, []),
            new("unknown scope", 30, ["write"]),
        })
        {
            await (await user.PostAsJsonAsync("/api/v1/users/me/tokens", request, ApiJson.Options)).AssertProblemAsync(HttpStatusCode.BadRequest);
        }
    }

    [Fact]
    public async Task The_stored_value_is_a_sha256_hash_and_lists_show_only_a_prefix()
    {
        using var user = await Api.NewUserClientAsync();
        var created = await user.CreateTokenAsync(ApiTokenScopes.Read);

        await using var connection = new NpgsqlConnection(Api.ConnectionString);
        var row = await connection.QuerySingleAsync<(byte[] Hash, string Prefix, string Everything)>(
            "SELECT token_hash, prefix, row_to_json(t)::text FROM api_tokens t WHERE id = @Id", new { created.Details.Id });
        Assert.Equal(SHA256.HashData(Encoding.UTF8.GetBytes(created.Token)), row.Hash);
        Assert.DoesNotContain(created.Token["ssp_".Length..], row.Everything);
        Assert.Equal(created.Token[..10], row.Prefix);

        var listed = await (await user.GetAsync("/api/v1/users/me/tokens")).Content.ReadAsStringAsync();
        Assert.DoesNotContain(created.Token, listed);
        Assert.Contains(row.Prefix, listed);
    }

    [Fact]
    public async Task Creation_first_use_and_revocation_are_audited_and_the_last_use_is_listed()
    {
        using var user = await Api.NewUserClientAsync();
        var created = await user.CreateTokenAsync(ApiTokenScopes.Read);
        Assert.Null(created.Details.LastUsedAt);
        using (var script = Api.TokenClient(created.Token))
        {
            for (var i = 0; i < 3; i++)
            {
                await (await script.GetAsync("/api/v1/sessions")).AssertJsonAsync(HttpStatusCode.OK);
            }
        }

        var listed = await (await user.GetAsync("/api/v1/users/me/tokens")).AssertJsonAsync<List<ApiTokenResponse>>(HttpStatusCode.OK);
        Assert.NotNull(Assert.Single(listed, t => t.Id == created.Details.Id).LastUsedAt);
        (await user.DeleteAsync($"/api/v1/users/me/tokens/{created.Details.Id}")).EnsureSuccessStatusCode();

        using var admin = await Api.AdminClientAsync();
        var audit = await (await admin.GetAsync($"/api/v1/audit?target_type=api_token&target_id={created.Details.Id}&page_size=100"))
            .AssertJsonAsync<AuditPage>(HttpStatusCode.OK);
        var actions = audit.Items.Select(e => e.Action).Order().ToList();
        // Three uses, one row: the first use of the day.
        Assert.Equal(["token.created", "token.revoked", "token.used"], actions);
    }

    [Fact]
    public async Task The_openapi_document_describes_the_ssp_bearer_scheme()
    {
        using var client = Api.CreateClient();
        var document = await (await client.GetAsync("/swagger/v1/swagger.json")).AssertJsonAsync(HttpStatusCode.OK);
        var scheme = document.GetProperty("components").GetProperty("securitySchemes").GetProperty("ApiToken");
        Assert.Equal("bearer", scheme.GetProperty("scheme").GetString());
        Assert.Contains("ssp_", scheme.GetProperty("bearerFormat").GetString());
        Assert.Contains(document.GetProperty("security").EnumerateArray(), requirement => requirement.TryGetProperty("ApiToken", out _));
    }

    [Fact]
    public async Task An_unknown_token_gets_401_problem_details()
    {
        using var script = Api.TokenClient("ssp_" + new string('x', 43));
        var refused = await (await script.GetAsync("/api/v1/sessions")).AssertProblemAsync(HttpStatusCode.Unauthorized);
        Assert.Equal("The API token is not known.", refused.GetProperty("detail").GetString());
        Assert.Contains("Bearer", (await script.GetAsync("/api/v1/sessions")).Headers.WwwAuthenticate.ToString());
    }

}
