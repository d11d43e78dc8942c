using System.Net;
using System.Net.Http.Json;
using Microsoft.Extensions.DependencyInjection;
using StreamSpace.Api.Features.Groups;
using StreamSpace.Contracts;
using StreamSpace.Contracts.Api;
using StreamSpace.Tests.Api.Features.Agents;
using StreamSpace.Tests.Api.Features.Sessions;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Api.Features.Groups;

/// <summary>The API with a global SESSION_QUOTA of 2 and one local agent running real Xvnc sessions.</summary>
public sealed class GroupsFixture : IAsyncLifetime
{
    public const int GlobalQuota = 2;

    public ApiFactory Api { get; private set; } = null!;

    public AgentHost Agent { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Api = new ApiFactory(await SharedPostgres.CreateDatabaseAsync(), new Dictionary<string, string?> { ["SESSION_QUOTA"] = $"{GlobalQuota}" }).Start();
        Agent = await AgentHost.StartAsync(Api.AgentHubUrl, "groups-agent", await Api.RegisterAgentAsync("groups-agent"));
        await Agent.WaitUntilConnectedAsync();
    }

    public async Task DisposeAsync()
    {
        await Agent.DisposeAsync();
        await Api.DisposeAsync();
    }
}

public static class GroupClient
{
    public static async Task<GroupResponse> CreateGroupAsync(this HttpClient admin, string name, GroupQuotas? quotas = null, bool providerManaged = false) =>
        await (await admin.PostAsJsonAsync("/api/v1/admin/groups", new GroupRequest(name, Quotas: quotas, ProviderManaged: providerManaged), ApiJson.Options))
            .AssertJsonAsync<GroupResponse>(HttpStatusCode.Created);

    public static async Task<GroupResponse> AddMemberAsync(this HttpClient admin, GroupResponse group, string username) =>
        await (await admin.PostAsJsonAsync($"/api/v1/admin/groups/{group.Id}/members", new AddGroupMemberRequest(username), ApiJson.Options))
            .AssertJsonAsync<GroupResponse>(HttpStatusCode.OK);

    public static async Task<GroupResponse> AllowTemplateAsync(this HttpClient admin, GroupResponse group, string template) =>
        await (await admin.PutAsync($"/api/v1/admin/groups/{group.Id}/templates/{template}", null)).AssertJsonAsync<GroupResponse>(HttpStatusCode.OK);

    public static async Task<List<string>> CatalogAsync(this HttpClient client) =>
        [.. (await (await client.GetAsync("/api/v1/templates")).AssertJsonAsync<List<TemplateBody>>(HttpStatusCode.OK)).Select(t => t.Name)];

    public static string UniqueName(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..6]}";
}

public sealed class GroupsTests(GroupsFixture fixture) : IClassFixture<GroupsFixture>
{
    [Fact]
    public async Task A_template_limited_to_group_a_is_absent_from_group_bs_catalog_and_its_launch_is_403_while_group_a_sees_and_launches_it()
    {
        using var admin = await fixture.Api.AdminClientAsync();
        var template = GroupClient.UniqueName("team-a-app");
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync("/api/v1/templates", new { name = template, display_name = "Team A app", command = "xterm" })).StatusCode);
        var groupA = await admin.CreateGroupAsync(GroupClient.UniqueName("a"));
        var groupB = await admin.CreateGroupAsync(GroupClient.UniqueName("b"));
        var (nameA, nameB) = (GroupClient.UniqueName("alice"), GroupClient.UniqueName("bob"));
        using var alice = await fixture.Api.NewUserClientAsync(nameA);
        using var bob = await fixture.Api.NewUserClientAsync(nameB);
        await admin.AddMemberAsync(groupA, nameA);
        await admin.AddMemberAsync(groupB, nameB);

        // Before any limit the template is open to everyone, as every template was before groups.
        Assert.Contains(template, await bob.CatalogAsync());

        var limited = await admin.AllowTemplateAsync(groupA, template);
        Assert.Equal([template], limited.Templates);

        var bobsCatalog = await bob.CatalogAsync();
        Assert.DoesNotContain(template, bobsCatalog);
        Assert.Contains("xterm", bobsCatalog);
        await (await bob.GetAsync($"/api/v1/templates/{template}")).AssertProblemAsync(HttpStatusCode.NotFound);
        var refused = await (await bob.PostAsJsonAsync("/api/v1/sessions", new CreateSessionRequest(template), ApiJson.Options)).AssertProblemAsync(HttpStatusCode.Forbidden);
        Assert.Contains(groupA.Name, refused.GetProperty("detail").GetString());

        Assert.Contains(template, await alice.CatalogAsync());
        var session = await alice.LaunchAsync(template);
        Assert.Equal(template, session.Template);
        // Admins see and launch every template.
        Assert.Contains(template, await admin.CatalogAsync());

        // A membership change applies to the next request: out of group A, Alice no longer sees it.
        Assert.Equal(HttpStatusCode.OK, (await admin.DeleteAsync($"/api/v1/admin/groups/{groupA.Id}/members/{await alice.UserIdAsync()}")).StatusCode);
        Assert.DoesNotContain(template, await alice.CatalogAsync());
        await (await alice.PostAsJsonAsync("/api/v1/sessions", new CreateSessionRequest(template), ApiJson.Options)).AssertProblemAsync(HttpStatusCode.Forbidden);

        // Group A is the template's only group: deleting it would open the template to everyone, so it is refused.
        await (await admin.DeleteAsync($"/api/v1/admin/groups/{groupA.Id}")).AssertProblemAsync(HttpStatusCode.Conflict);
        Assert.Equal(HttpStatusCode.OK, (await admin.DeleteAsync($"/api/v1/admin/groups/{groupA.Id}/templates/{template}")).StatusCode);
        Assert.Contains(template, await bob.CatalogAsync());
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"/api/v1/admin/groups/{groupA.Id}")).StatusCode);

        var audit = await (await admin.GetAsync($"/api/v1/audit?target_type=group&target_id={groupA.Id}")).AssertJsonAsync<AuditPage>(HttpStatusCode.OK);
        Assert.Equal(["group.created", "group.member.added", "group.template.allowed", "group.member.removed", "group.template.removed", "group.deleted"],
            audit.Items.Reverse().Select(e => e.Action));
    }

    [Fact]
    public async Task A_hibernated_session_of_a_template_its_owner_was_taken_out_of_cannot_be_woken_but_can_be_stopped()
    {
        using var admin = await fixture.Api.AdminClientAsync();
        var template = GroupClient.UniqueName("wake-app");
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync("/api/v1/templates", new { name = template, display_name = "Wake app", command = "xterm" })).StatusCode);
        var group = await admin.CreateGroupAsync(GroupClient.UniqueName("wakers"));
        var name = GroupClient.UniqueName("carol");
        using var carol = await fixture.Api.NewUserClientAsync(name);
        await admin.AddMemberAsync(group, name);
        await admin.AllowTemplateAsync(group, template);
        var session = await carol.LaunchAsync(template);
        await carol.WaitForStateAsync(session.Id, SessionState.Running);
        Assert.Equal(HttpStatusCode.Accepted, (await carol.PostAsync($"/api/v1/sessions/{session.Id}/hibernate", null)).StatusCode);
        await carol.WaitForStateAsync(session.Id, SessionState.Hibernated);

        Assert.Equal(HttpStatusCode.OK, (await admin.DeleteAsync($"/api/v1/admin/groups/{group.Id}/members/{await carol.UserIdAsync()}")).StatusCode);
        var refused = await (await carol.PostAsync($"/api/v1/sessions/{session.Id}/wake", null)).AssertProblemAsync(HttpStatusCode.Forbidden);
        Assert.Contains(group.Name, refused.GetProperty("detail").GetString());
        Assert.Equal(HttpStatusCode.Accepted, (await carol.DeleteAsync($"/api/v1/sessions/{session.Id}")).StatusCode);
        await carol.WaitForStateAsync(session.Id, SessionState.Stopped);
    }

    [Fact]
    public async Task A_user_in_groups_allowing_1_and_3_sessions_gets_the_most_generous_3()
    {
        using var admin = await fixture.Api.AdminClientAsync();
        var one = await admin.CreateGroupAsync(GroupClient.UniqueName("one"), new GroupQuotas(MaxSessions: 1));
        var three = await admin.CreateGroupAsync(GroupClient.UniqueName("three"), new GroupQuotas(MaxSessions: 3));
        var username = GroupClient.UniqueName("carol");
        using var carol = await fixture.Api.NewUserClientAsync(username);
        await admin.AddMemberAsync(one, username);
        await admin.AddMemberAsync(three, username);

        for (var i = 0; i < 3; i++)
        {
            await carol.LaunchAsync();
        }

        var fourth = await (await carol.PostAsJsonAsync("/api/v1/sessions", new CreateSessionRequest("xterm"), ApiJson.Options)).AssertProblemAsync(HttpStatusCode.Conflict);
        Assert.Contains($"max_sessions=3 of group '{three.Name}'", fourth.GetProperty("detail").GetString());

        // Lowered to 1, the quota holds for the next launch already.
        await (await admin.PutAsJsonAsync($"/api/v1/admin/groups/{three.Id}/quotas", new GroupQuotas(MaxSessions: 1), ApiJson.Options)).AssertJsonAsync<GroupResponse>(HttpStatusCode.OK);
        var stopped = (await (await carol.GetAsync("/api/v1/sessions")).AssertJsonAsync<List<SessionResponse>>(HttpStatusCode.OK)).First();
        Assert.Equal(HttpStatusCode.Accepted, (await carol.DeleteAsync($"/api/v1/sessions/{stopped.Id}")).StatusCode);
        await carol.WaitForStateAsync(stopped.Id, SessionState.Stopped);
        await (await carol.PostAsJsonAsync("/api/v1/sessions", new CreateSessionRequest("xterm"), ApiJson.Options)).AssertProblemAsync(HttpStatusCode.Conflict);
    }

    [Fact]
    public async Task Where_no_group_sets_a_session_quota_the_global_SESSION_QUOTA_applies()
    {
        using var admin = await fixture.Api.AdminClientAsync();
        var unlimited = await admin.CreateGroupAsync(GroupClient.UniqueName("no-quota"), new GroupQuotas(MaxCpuMillicores: 500));
        var username = GroupClient.UniqueName("dave");
        using var dave = await fixture.Api.NewUserClientAsync(username);
        await admin.AddMemberAsync(unlimited, username);

        for (var i = 0; i < GroupsFixture.GlobalQuota; i++)
        {
            await dave.LaunchAsync();
        }

        var refused = await (await dave.PostAsJsonAsync("/api/v1/sessions", new CreateSessionRequest("xterm"), ApiJson.Options)).AssertProblemAsync(HttpStatusCode.Conflict);
        Assert.Contains($"SESSION_QUOTA={GroupsFixture.GlobalQuota}", refused.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task The_providers_groups_replace_the_provider_made_memberships_and_leave_hand_made_ones_and_unmanaged_groups_alone()
    {
        using var admin = await fixture.Api.AdminClientAsync();
        var engineering = await admin.CreateGroupAsync(GroupClient.UniqueName("Engineering"), providerManaged: true);
        var operations = await admin.CreateGroupAsync(GroupClient.UniqueName("operations"), providerManaged: true);
        var handMade = await admin.CreateGroupAsync(GroupClient.UniqueName("hand-made"), providerManaged: true);
        var unmanaged = await admin.CreateGroupAsync(GroupClient.UniqueName("unmanaged"));
        var username = GroupClient.UniqueName("erin");
        using var erin = await fixture.Api.NewUserClientAsync(username);
        var userId = await erin.UserIdAsync();
        await admin.AddMemberAsync(handMade, username);
        var groups = fixture.Api.Services.GetRequiredService<IUserGroups>();

        // Matched without case; a name no group has, and a group the provider does not manage, are ignored.
        await groups.SetProviderGroupsAsync(userId, [engineering.Name.ToUpperInvariant(), unmanaged.Name, "no-such-group"], CancellationToken.None);
        Assert.Equal(
            [(engineering.Name, GroupMemberSources.Provider), (handMade.Name, GroupMemberSources.Manual)],
            await MembershipsAsync(admin, username));

        await groups.SetProviderGroupsAsync(userId, [operations.Name], CancellationToken.None);
        Assert.Equal(
            [(handMade.Name, GroupMemberSources.Manual), (operations.Name, GroupMemberSources.Provider)],
            await MembershipsAsync(admin, username));

        // A claim that names a group the user is in by hand keeps it hand-made, so a later claim without it keeps it too.
        await groups.SetProviderGroupsAsync(userId, [handMade.Name], CancellationToken.None);
        await groups.SetProviderGroupsAsync(userId, [], CancellationToken.None);
        Assert.Equal([(handMade.Name, GroupMemberSources.Manual)], await MembershipsAsync(admin, username));
    }

    [Fact]
    public async Task Group_administration_is_for_admins_only()
    {
        using var admin = await fixture.Api.AdminClientAsync();
        var group = await admin.CreateGroupAsync(GroupClient.UniqueName("admins-only"));
        using var user = await fixture.Api.NewUserClientAsync();

        await (await user.GetAsync("/api/v1/admin/groups")).AssertProblemAsync(HttpStatusCode.Forbidden);
        await (await user.PostAsJsonAsync("/api/v1/admin/groups", new GroupRequest("mine"), ApiJson.Options)).AssertProblemAsync(HttpStatusCode.Forbidden);
        await (await user.PutAsJsonAsync($"/api/v1/admin/groups/{group.Id}/quotas", new GroupQuotas(MaxSessions: 100), ApiJson.Options)).AssertProblemAsync(HttpStatusCode.Forbidden);
        await (await user.PostAsJsonAsync($"/api/v1/admin/groups/{group.Id}/members", new { username = "admin" })).AssertProblemAsync(HttpStatusCode.Forbidden);
        await (await user.PutAsync($"/api/v1/admin/groups/{group.Id}/templates/xterm", null)).AssertProblemAsync(HttpStatusCode.Forbidden);
        Assert.Empty((await (await admin.GetAsync($"/api/v1/admin/groups/{group.Id}")).AssertJsonAsync<GroupResponse>(HttpStatusCode.OK)).Members);
    }

    [Theory]
    [InlineData("""{"name":""}""", "name")]
    [InlineData("""{"name":" padded "}""", "name")]
    [InlineData("""{"name":"q","quotas":{"max_sessions":-1}}""", "max_sessions")]
    [InlineData("""{"name":"q","quotas":{"max_cpu_millicores":0}}""", "max_cpu_millicores")]
    [InlineData("""{"name":"q","quotas":{"max_memory_mib":"lots"}}""", "max_memory_mib")]
    public async Task An_invalid_group_is_400_naming_the_field(string body, string field)
    {
        using var admin = await fixture.Api.AdminClientAsync();
        var response = await admin.PostAsync("/api/v1/admin/groups", new StringContent(body, System.Text.Encoding.UTF8, "application/json"));
        Assert.Contains(field, (await response.AssertProblemAsync(HttpStatusCode.BadRequest)).ToString(), StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task Invalid_quotas_members_and_ids_are_400_and_a_duplicate_name_409()
    {
        using var admin = await fixture.Api.AdminClientAsync();
        var group = await admin.CreateGroupAsync(GroupClient.UniqueName("Design"));

        var quotas = await (await admin.PutAsJsonAsync($"/api/v1/admin/groups/{group.Id}/quotas", new { max_sessions = 100_000 })).AssertProblemAsync(HttpStatusCode.BadRequest);
        Assert.Contains("max_sessions", quotas.ToString(), StringComparison.OrdinalIgnoreCase);
        var member = await (await admin.PostAsJsonAsync($"/api/v1/admin/groups/{group.Id}/members", new { username = "nobody-by-that-name" })).AssertProblemAsync(HttpStatusCode.BadRequest);
        Assert.Contains("nobody-by-that-name", member.ToString());
        await (await admin.GetAsync("/api/v1/admin/groups/not-a-guid")).AssertProblemAsync(HttpStatusCode.BadRequest);
        await (await admin.PutAsync($"/api/v1/admin/groups/{group.Id}/templates/no-such-template", null)).AssertProblemAsync(HttpStatusCode.NotFound);
        await (await admin.GetAsync($"/api/v1/admin/groups/{Guid.NewGuid()}")).AssertProblemAsync(HttpStatusCode.NotFound);
        await (await admin.PostAsJsonAsync("/api/v1/admin/groups", new GroupRequest(group.Name.ToUpperInvariant()), ApiJson.Options)).AssertProblemAsync(HttpStatusCode.Conflict);
    }

    private static async Task<List<(string Group, string Source)>> MembershipsAsync(HttpClient admin, string username) =>
        [.. (await (await admin.GetAsync("/api/v1/admin/groups")).AssertJsonAsync<List<GroupResponse>>(HttpStatusCode.OK))
            .SelectMany(g => g.Members.Where(m => m.Username == username).Select(m => (g.Name, m.Source)))
            .OrderBy(m => m.Name, StringComparer.OrdinalIgnoreCase)];
}
