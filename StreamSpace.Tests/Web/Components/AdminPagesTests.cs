using System.Net;
using System.Security.Claims;
using System.Text;
using System.Text.Json;
using Bunit;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using StreamSpace.Contracts;
using StreamSpace.Contracts.Api;
using StreamSpace.Web.Services.Api;
using StreamSpace.Web.Services.Auth;
using AuditLogPage = StreamSpace.Web.Components.Pages.Admin.Audit;
using GroupsPage = StreamSpace.Web.Components.Pages.Admin.Groups;
using RecordingsPage = StreamSpace.Web.Components.Pages.Admin.Recordings;
using TemplatesPage = StreamSpace.Web.Components.Pages.Admin.Templates;
using UsersPage = StreamSpace.Web.Components.Pages.Admin.Users;

namespace StreamSpace.Tests.Web.Components;

/// <summary>
/// The admin pages' forms, against an API that answers from memory: what an admin enters is what the API is asked.
/// Playwright signs in and browses; these check the requests the forms make.
/// </summary>
public sealed class AdminPagesTests : BunitContext
{
    private readonly RecordingApi api = new();

    public AdminPagesTests()
    {
        Services.AddLogging();
        Services.AddSingleton(TimeProvider.System);
        Services.AddSingleton<IHttpClientFactory>(api);
        Services.AddSingleton<IHttpContextAccessor>(new HttpContextAccessor { HttpContext = SignedIn("the-admins-token") });
        Services.AddSingleton<StreamSpaceApi>();
        Services.AddScoped<ApiSession>();
    }

    [Fact]
    public void The_audit_log_pages_forward_and_back_through_its_entries()
    {
        static AuditEntryResponse Entry(int id) => new(id, DateTimeOffset.UnixEpoch.AddMinutes(id), null, "admin", $"action.{id}", "user", null,
            JsonDocument.Parse("{}").RootElement);
        api.Answer(HttpMethod.Get, "api/v1/audit?page=1&page_size=50", new AuditPage([.. Enumerable.Range(1, 50).Select(Entry)], 60, 1, 50));
        api.Answer(HttpMethod.Get, "api/v1/audit?page=2&page_size=50", new AuditPage([.. Enumerable.Range(51, 10).Select(Entry)], 60, 2, 50));
        var page = Render<AuditLogPage>();
        page.WaitForAssertion(() => Assert.Contains("Page 1 of 2 (60 entries)", page.Find("nav.pager").TextContent));

        page.FindAll("nav.pager button").Single(b => b.TextContent == "Next").Click();
        page.WaitForAssertion(() => Assert.Contains("Page 2 of 2", page.Find("nav.pager").TextContent));
        Assert.Equal(10, page.FindAll("tbody tr").Count);
        Assert.Contains("action.51", page.Find("tbody").TextContent);

        page.FindAll("nav.pager button").Single(b => b.TextContent == "Previous").Click();
        page.WaitForAssertion(() => Assert.Equal(50, page.FindAll("tbody tr").Count));
        Assert.Contains("action.1", page.Find("tbody").TextContent);
    }

    [Fact]
    public void The_recordings_page_lists_each_with_play_export_and_delete_which_asks_the_api_and_reloads()
    {
        var id = Guid.NewGuid();
        var recording = new RecordingResponse(id, "sess-rec", Guid.NewGuid(), "alice", "xterm", "agent-1", DateTimeOffset.UnixEpoch,
            DateTimeOffset.UnixEpoch.AddSeconds(75), 75_000, 3 * 1024 * 1024, Recording: false);
        api.Answer(HttpMethod.Get, "api/v1/admin/recordings", new[] { recording });
        var page = Render<RecordingsPage>();
        page.WaitForAssertion(() => Assert.Single(page.FindAll("tbody tr")));

        var row = page.Find($"tr[data-recording-id='{id}']");
        Assert.Contains("alice", row.TextContent);
        Assert.Equal("1:15", row.QuerySelector(".recording-duration")!.TextContent);
        Assert.Contains("3 MiB", row.TextContent);
        Assert.Equal($"admin/recordings/{id}/play", row.QuerySelector("[aria-label='Play the recording of sess-rec']")!.GetAttribute("href"));
        Assert.Equal($"api/v1/admin/recordings/{id}/export", row.QuerySelector("[aria-label='Export the recording of sess-rec as MP4']")!.GetAttribute("href"));

        api.Answer(HttpMethod.Delete, $"api/v1/admin/recordings/{id}", new { }, HttpStatusCode.NoContent);
        api.Answer(HttpMethod.Get, "api/v1/admin/recordings", Array.Empty<RecordingResponse>());
        page.Find("[aria-label='Delete the recording of sess-rec']").Click();
        page.WaitForAssertion(() => Assert.Contains("No recordings.", page.Markup));
        Assert.Contains(api.Requests, r => r.Method == HttpMethod.Delete && r.Path == $"api/v1/admin/recordings/{id}");
        Assert.Contains("Deleted the recording of sess-rec.", page.Markup);
    }

    [Fact]
    public void Editing_a_template_changes_what_the_form_shows_and_keeps_its_env_and_resources_and_sets_its_clipboard_directions()
    {
        var xterm = new TemplateBody("xterm", "XTerm", "A terminal", "tools", "terminal", null, "xterm", 5900, new TemplateResources("1", "1Gi"),
            new() { ["GREETING"] = new TemplateEnvValue("hello", null), ["DB_PASSWORD"] = new TemplateEnvValue(null, new SecretKeyRef("db", "password")) },
            false, "30m", "8h", ClipboardToBrowser: true, ClipboardToSession: true);
        api.Answer(HttpMethod.Get, "api/v1/templates", new[] { xterm });
        api.Answer(HttpMethod.Put, "api/v1/templates/xterm", xterm with { DisplayName = "Terminal" });
        var page = Render<TemplatesPage>();

        Assert.Equal("both ways", page.Find("tr[data-template='xterm'] .clipboard-directions").TextContent);
        page.Find("[aria-label='Edit xterm']").Click();
        Assert.Equal("Edit xterm", page.Find("#template-form-title").TextContent);
        page.Find("#template-display").Change("Terminal");
        page.Find("#template-idle").Change("1h");
        page.Find("#template-clipboard-to-browser").Change(false);
        page.Find("section[aria-labelledby='template-form-title'] form").Submit();

        page.WaitForAssertion(() => Assert.Equal("Saved xterm.", page.Find("[role=status]").TextContent.Trim()));
        var sent = api.Body<TemplateBody>(HttpMethod.Put, "api/v1/templates/xterm");
        Assert.Equal(xterm with { DisplayName = "Terminal", IdleTimeout = "1h", ClipboardToBrowser = false, Sharing = true, Audio = true, Record = false }, sent with { Env = xterm.Env });
        Assert.Equal(xterm.Env, sent.Env);
        Assert.All(api.Requests, r => Assert.Equal("the-admins-token", r.Token));
        Assert.Equal("New template", page.Find("#template-form-title").TextContent);
    }

    [Fact]
    public void Creating_a_user_sends_the_name_password_and_role_entered_and_says_so()
    {
        var created = new UserResponse(Guid.NewGuid(), "dana", UserRoles.Admin, false, DateTimeOffset.UtcNow);
        api.Answer(HttpMethod.Get, "api/v1/users", Array.Empty<UserResponse>());
        api.Answer(HttpMethod.Post, "api/v1/users", created, HttpStatusCode.Created);
        var page = Render<UsersPage>();

        page.Find("#new-username").Change(" dana ");
        page.Find("#new-password").Change("a-long-password");
        page.Find("#new-role").Change(UserRoles.Admin);
        page.Find("form[aria-label='Create a user']").Submit();

        page.WaitForAssertion(() => Assert.Equal("Created dana.", page.Find("[role=status]").TextContent.Trim()));
        Assert.Equal(new CreateUserRequest("dana", "a-long-password", UserRoles.Admin), api.Body<CreateUserRequest>(HttpMethod.Post, "api/v1/users"));
        Assert.Equal("", page.Find("#new-username").GetAttribute("value"));
    }

    [Fact]
    public void Disabling_a_user_sends_only_that_change()
    {
        var dana = new UserResponse(Guid.NewGuid(), "dana", UserRoles.User, false, DateTimeOffset.UtcNow);
        api.Answer(HttpMethod.Get, "api/v1/users", new[] { dana });
        api.Answer(HttpMethod.Patch, $"api/v1/users/{dana.Id}", dana with { Disabled = true });
        var page = Render<UsersPage>();

        page.Find("[aria-label='Disable dana']").Click();

        page.WaitForAssertion(() => Assert.Equal("Updated dana.", page.Find("[role=status]").TextContent.Trim()));
        // A PATCH names only what changes, so the role and the password stay as they are.
        Assert.Equal("""{"disabled":true}""", api.Requests.Single(r => r.Method == HttpMethod.Patch).Body);
    }

    [Fact]
    public void A_groups_quotas_are_saved_as_entered_with_an_emptied_one_as_not_set_and_a_template_is_limited_to_it()
    {
        var design = new GroupResponse(Guid.NewGuid(), "design", "", false, new GroupQuotas(MaxSessions: 2, MaxMemoryMib: 1024),
            [new GroupMemberResponse(Guid.NewGuid(), "dana", GroupMemberSources.Provider)], [], DateTimeOffset.UtcNow);
        api.Answer(HttpMethod.Get, "api/v1/admin/groups", new[] { design });
        api.Answer(HttpMethod.Get, "api/v1/templates", new[] { new TemplateBody("xterm", "XTerm", null, null, null, null, "xterm", 5900, null, null, null, null, null) });
        api.Answer(HttpMethod.Put, $"api/v1/admin/groups/{design.Id}/quotas", design);
        api.Answer(HttpMethod.Put, $"api/v1/admin/groups/{design.Id}/templates/xterm", design with { Templates = ["xterm"] });
        var page = Render<GroupsPage>();

        Assert.Contains("dana (from the provider)", page.Find("section[data-group='design'] .group-members").TextContent);
        page.Find($"#sessions-{design.Id}").Change("5");
        page.Find($"#memory-{design.Id}").Change("");
        page.Find($"#cpu-{design.Id}").Change("1500");
        page.Find("form[aria-label='Quotas of design']").Submit();
        page.WaitForAssertion(() => Assert.Equal("Saved the quotas of design.", page.Find("[role=status]").TextContent.Trim()));
        Assert.Equal(new GroupQuotas(5, 1500, null), api.Body<GroupQuotas>(HttpMethod.Put, $"api/v1/admin/groups/{design.Id}/quotas"));

        page.Find($"#template-{design.Id}").Change("xterm");
        page.Find("form[aria-label='Allow a template to design']").Submit();
        page.WaitForAssertion(() => Assert.Equal("Limited xterm to design.", page.Find("[role=status]").TextContent.Trim()));
        Assert.Contains(api.Requests, r => r.Method == HttpMethod.Put && r.Path == $"api/v1/admin/groups/{design.Id}/templates/xterm");
    }

    private static DefaultHttpContext SignedIn(string token)
    {
        var services = new ServiceCollection().AddSingleton<IAuthenticationService>(new CookieWithToken(token)).BuildServiceProvider();
        return new DefaultHttpContext { RequestServices = services };
    }

    /// <summary>The auth cookie as the web's sign-in leaves it: the API's token stored in its properties.</summary>
    private sealed class CookieWithToken(string token) : IAuthenticationService
    {
        public Task<AuthenticateResult> AuthenticateAsync(HttpContext context, string? scheme)
        {
            var properties = new AuthenticationProperties();
            properties.StoreTokens([new AuthenticationToken { Name = AuthCookie.AccessTokenName, Value = token }]);
            return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(new ClaimsIdentity("cookie")), properties, scheme ?? "cookie")));
        }

        public Task ChallengeAsync(HttpContext context, string? scheme, AuthenticationProperties? properties) => Task.CompletedTask;

        public Task ForbidAsync(HttpContext context, string? scheme, AuthenticationProperties? properties) => Task.CompletedTask;

        public Task SignInAsync(HttpContext context, string? scheme, ClaimsPrincipal principal, AuthenticationProperties? properties) => Task.CompletedTask;

        public Task SignOutAsync(HttpContext context, string? scheme, AuthenticationProperties? properties) => Task.CompletedTask;
    }

    /// <summary>The API as the web reaches it: answers set per method and path, and every request kept with its body and token.</summary>
    private sealed class RecordingApi : HttpMessageHandler, IHttpClientFactory
    {
        private readonly Dictionary<(HttpMethod, string), (HttpStatusCode Status, string Json)> answers = [];

        public sealed record Request(HttpMethod Method, string Path, string? Body, string? Token);

        public List<Request> Requests { get; } = [];

        public void Answer(HttpMethod method, string path, object body, HttpStatusCode status = HttpStatusCode.OK) =>
            answers[(method, path)] = (status, JsonSerializer.Serialize(body, ApiJson.Options));

        public T Body<T>(HttpMethod method, string path) =>
            JsonSerializer.Deserialize<T>(Requests.Single(r => r.Method == method && r.Path == path).Body!, ApiJson.Options)!;

        public HttpClient CreateClient(string name) => new(this, disposeHandler: false) { BaseAddress = ApiClientExtensions.BaseAddress };

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            // The query is part of what is asked: a page that sends the wrong parameter gets no answer.
            var path = request.RequestUri!.AbsolutePath.TrimStart('/') + request.RequestUri.Query;
            var body = request.Content is null ? null : await request.Content.ReadAsStringAsync(cancellationToken);
            Requests.Add(new Request(request.Method, path, body, request.Headers.Authorization?.Parameter));
            return answers.TryGetValue((request.Method, path), out var answer)
                ? new HttpResponseMessage(answer.Status) { Content = new StringContent(answer.Json, Encoding.UTF8, "application/json") }
                : new HttpResponseMessage(HttpStatusCode.NotFound);
        }
    }
}
