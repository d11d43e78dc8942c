using System.Net;
using System.Net.Http.Json;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Api.Features.Sessions;

public sealed class TemplatesTests(ApiFixture fixture) : IClassFixture<ApiFixture>
{
    [Fact]
    public async Task The_first_start_seeds_xterm_and_chromium_which_any_user_can_list()
    {
        using var user = await fixture.Api.NewUserClientAsync();
        var templates = await (await user.GetAsync("/api/v1/templates")).AssertJsonAsync(HttpStatusCode.OK);
        var names = templates.EnumerateArray().Select(t => t.GetProperty("name").GetString()).ToList();
        Assert.Contains("xterm", names);
        Assert.Contains("chromium-browser", names);
        var xterm = templates.EnumerateArray().Single(t => t.GetProperty("name").GetString() == "xterm");
        Assert.Equal("xterm", xterm.GetProperty("command").GetString());
        Assert.Equal(5900, xterm.GetProperty("vnc_port").GetInt32());
        Assert.Equal("30m", xterm.GetProperty("idle_timeout").GetString());
    }

    [Fact]
    public async Task Admins_create_replace_and_delete_templates_and_users_cannot()
    {
        using var user = await fixture.Api.NewUserClientAsync();
        await (await user.PostAsJsonAsync("/api/v1/templates", new { name = "mine", display_name = "Mine", command = "xterm" })).AssertProblemAsync(HttpStatusCode.Forbidden);

        using var admin = await fixture.Api.AdminClientAsync();
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync("/api/v1/templates", new { name = "editor", display_name = "Editor", command = "xterm -e vi" })).StatusCode);
        var replaced = await (await admin.PutAsJsonAsync("/api/v1/templates/editor", new { name = "editor", display_name = "Vi editor", command = "xterm -e vi", max_duration = "8h" })).AssertJsonAsync(HttpStatusCode.OK);
        Assert.Equal("Vi editor", replaced.GetProperty("display_name").GetString());
        Assert.Equal("8h", replaced.GetProperty("max_duration").GetString());
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
}
