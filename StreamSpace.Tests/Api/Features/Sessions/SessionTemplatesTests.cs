using System.Net;
using System.Net.Http.Json;
using StreamSpace.Contracts;
using StreamSpace.Contracts.Api;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Api.Features.Sessions;

public sealed class TemplatesTests(ApiFixture fixture) : IClassFixture<ApiFixture>
{
    [Fact]
    public async Task The_first_start_seeds_xterm_and_chromium_which_any_user_can_list()
    {
        using var user = await fixture.Api.NewUserClientAsync();
        var templates = await (await user.GetAsync("/api/v1/templates")).AssertJsonAsync<List<TemplateBody>>(HttpStatusCode.OK);
        Assert.Contains(templates, t => t.Name == "chromium-browser");
        var xterm = Assert.Single(templates, t => t.Name == "xterm");
        Assert.Equal("xterm", xterm.Command);
        Assert.Equal(5900, xterm.VncPort);
        Assert.Equal("30m", xterm.IdleTimeout);
    }

    [Fact]
    public async Task Admins_create_replace_and_delete_templates_and_users_cannot()
    {
        using var user = await fixture.Api.NewUserClientAsync();
        await (await user.PostAsJsonAsync("/api/v1/templates", new { name = "mine", display_name = "Mine", command = "xterm" })).AssertProblemAsync(HttpStatusCode.Forbidden);

        using var admin = await fixture.Api.AdminClientAsync();
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync("/api/v1/templates", new { name = "editor", display_name = "Editor", command = "xterm -e vi" })).StatusCode);
        var replaced = await (await admin.PutAsJsonAsync("/api/v1/templates/editor", new { name = "editor", display_name = "Vi editor", command = "xterm -e vi", max_duration = "8h" }))
            .AssertJsonAsync<TemplateBody>(HttpStatusCode.OK);
        Assert.Equal("Vi editor", replaced.DisplayName);
        Assert.Equal("8h", replaced.MaxDuration);
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync("/api/v1/templates/editor")).StatusCode);
        await (await admin.GetAsync("/api/v1/templates/editor")).AssertProblemAsync(HttpStatusCode.NotFound);
    }

    [Theory]
    [InlineData("""{"name":"Bad Name","display_name":"x","command":"xterm"}""", "name")]
    [InlineData("""{"name":"no-runtime","display_name":"x"}""", "command")]
    [InlineData("""{"name":"bad-port","display_name":"x","command":"xterm","vnc_port":70000}""", "vnc")]
    [InlineData("""{"name":"bad-idle","display_name":"x","command":"xterm","idle_timeout":"soon"}""", "idle")]
    public async Task An_invalid_template_is_400_naming_the_field(string body, string field)
    {
        using var admin = await fixture.Api.AdminClientAsync();
        var response = await admin.PostAsync("/api/v1/templates", new StringContent(body, System.Text.Encoding.UTF8, "application/json"));
        Assert.Contains(field, (await response.AssertProblemAsync(HttpStatusCode.BadRequest)).ToString(), StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task Env_values_and_secret_refs_are_shown_to_admins_and_other_users_see_only_the_names()
    {
        using var admin = await fixture.Api.AdminClientAsync();
        await admin.CreateTemplateWithSecretEnvAsync("with-env", "With env");

        var asAdmin = await (await admin.GetAsync("/api/v1/templates/with-env")).AssertJsonAsync<TemplateBody>(HttpStatusCode.OK);
        Assert.Equal("hello", asAdmin.Env!["GREETING"]!.Value);
        Assert.Equal(new SecretKeyRef("db-creds", "password"), asAdmin.Env["DB_PASSWORD"]!.SecretRef);
        var adminList = await (await admin.GetAsync("/api/v1/templates")).AssertJsonAsync<List<TemplateBody>>(HttpStatusCode.OK);
        Assert.Equal("hello", adminList.Single(t => t.Name == "with-env").Env!["GREETING"]!.Value);

        using var user = await fixture.Api.NewUserClientAsync();
        var asUser = await (await user.GetAsync("/api/v1/templates/with-env")).AssertJsonAsync(HttpStatusCode.OK);
        var userList = await (await user.GetAsync("/api/v1/templates")).AssertJsonAsync(HttpStatusCode.OK);
        foreach (var view in new[] { asUser, userList.EnumerateArray().Single(t => t.GetProperty("name").GetString() == "with-env") })
        {
            var env = view.GetProperty("env");
            Assert.Equal(["DB_PASSWORD", "GREETING"], env.EnumerateObject().Select(e => e.Name).Order(StringComparer.Ordinal));
            Assert.All(env.EnumerateObject(), e => Assert.Equal(System.Text.Json.JsonValueKind.Null, e.Value.ValueKind));
            Assert.DoesNotContain("hello", view.ToString());
            Assert.DoesNotContain("db-creds", view.ToString());
        }
    }

    [Theory]
    [InlineData("""{"name":"ref-no-image","display_name":"x","command":"xterm","env":{"A":{"secret_ref":{"name":"s","key":"k"}}}}""", "image")]
    [InlineData("""{"name":"ref-bad-name","display_name":"x","image":"i","env":{"A":{"secret_ref":{"name":"Not A Name","key":"k"}}}}""", "secret_ref")]
    [InlineData("""{"name":"env-number","display_name":"x","command":"xterm","env":{"A":5}}""", "secret_ref")]
    [InlineData("""{"name":"env-vnc","display_name":"x","command":"xterm","env":{"VNC_SEND_CUT_TEXT":"1"}}""", "reserved")]
    public async Task A_bad_env_entry_is_400(string body, string mentioned)
    {
        using var admin = await fixture.Api.AdminClientAsync();
        var response = await admin.PostAsync("/api/v1/templates", new StringContent(body, System.Text.Encoding.UTF8, "application/json"));
        Assert.Contains(mentioned, (await response.AssertProblemAsync(HttpStatusCode.BadRequest)).ToString(), StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task A_replace_that_leaves_out_the_clipboard_directions_keeps_them_closed()
    {
        using var admin = await fixture.Api.AdminClientAsync();
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync("/api/v1/templates",
            new { name = "dlp-kept", display_name = "DLP", command = "xterm", clipboard_to_browser = false })).StatusCode);

        // An older client's edit knows nothing of the clipboard: the direction the admin closed stays closed.
        var replaced = await (await admin.PutAsJsonAsync("/api/v1/templates/dlp-kept", new { name = "dlp-kept", display_name = "DLP v2", command = "xterm" }))
            .AssertJsonAsync<TemplateBody>(HttpStatusCode.OK);
        Assert.Equal("DLP v2", replaced.DisplayName);
        Assert.False(replaced.ClipboardToBrowser);
        Assert.True(replaced.ClipboardToSession);
    }

    [Fact]
    public async Task A_template_with_a_secret_ref_is_never_placed_on_a_local_agent()
    {
        var key = await Agents.AgentTestData.RegisterAgentAsync(fixture.Api, "tmpl-local");
        await using var agent = await AgentHost.StartAsync(fixture.Api.AgentHubUrl, "tmpl-local", key);
        await agent.WaitUntilConnectedAsync();

        using var admin = await fixture.Api.AdminClientAsync();
        var created = await admin.PostAsJsonAsync("/api/v1/templates", new
        {
            name = "ref-both",
            display_name = "Both platforms but a Secret",
            command = "xterm",
            image = "example/session:1",
            env = new { TOKEN = new { secret_ref = new { name = "tokens", key = "t" } } },
        });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);

        var launch = await admin.PostAsJsonAsync("/api/v1/sessions", new { template = "ref-both" });
        var problem = await launch.AssertProblemAsync(HttpStatusCode.ServiceUnavailable);
        Assert.EndsWith("(kubernetes).", problem.GetProperty("detail").GetString());
    }
}
