using System.Diagnostics;
using System.Net.Http.Json;
using System.Text;
using Microsoft.Playwright;
using StreamSpace.Tests.Api.Features.Agents;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Web;

/// <summary>
/// The whole stack a browser sees: the API on Kestrel with PostgreSQL, a local agent running real Xvnc sessions,
/// StreamSpace.Web as its own process (the built assembly, as `dotnet run` would start it), and Debian's chromium
/// driven by Playwright. Shared by the tests of a class; each test opens its own browser context (its own cookies).
/// </summary>
public sealed class WebFixture : IAsyncLifetime
{
    public const string AgentId = "web-agent";
    public const string UserPassword = "user-password-123";

    private readonly WebStackOptions options;

    public WebFixture()
        : this(new WebStackOptions())
    {
    }

    /// <summary>A stack with other settings, for fixtures that wrap this one (xunit builds fixtures with the public constructor).</summary>
    internal WebFixture(WebStackOptions options) => this.options = options;

    private readonly StringBuilder webOutput = new();
    private Process? web;
    private readonly List<string> homes = [];
    private IPlaywright? playwright;

    public ApiFactory Api { get; private set; } = null!;

    /// <summary>The local agent; null in a stack started without one (<see cref="WebStackOptions.WithAgent"/>).</summary>
    public AgentHost Agent { get; private set; } = null!;

    public IBrowser Browser { get; private set; } = null!;

    public Uri WebAddress { get; private set; } = null!;

    /// <summary>What the web process printed, for failure messages.</summary>
    public string WebOutput
    {
        get
        {
            lock (webOutput)
            {
                return webOutput.ToString();
            }
        }
    }

    public async Task InitializeAsync()
    {
        var apiSettings = new Dictionary<string, string?> { ["SESSION_QUOTA"] = "20" };
        foreach (var (name, value) in options.ApiSettings)
        {
            apiSettings[name] = value;
        }

        Api = new ApiFactory(await SharedPostgres.CreateDatabaseAsync(), apiSettings).Start();
        if (options.WithAgent)
        {
            Agent = await AgentHost.StartAsync(Api.AgentHubUrl, AgentId, await Api.RegisterAgentAsync(AgentId));
            await Agent.WaitUntilConnectedAsync();
        }

        if (options.WebAddress is { } address)
        {
            WebAddress = address;
        }

        web = await StartWebAsync(environment: null);
        playwright = await Playwright.CreateAsync();
        Browser = await LaunchBrowserAsync();
    }

    /// <summary>
    /// Debian's chromium: no browser download, and the flags a root, GPU-less, offline machine needs; sound plays
    /// without a click first. <paramref name="arguments"/> are added (a test's own browser, such as one that maps a
    /// host name).
    /// </summary>
    public Task<IBrowser> LaunchBrowserAsync(params string[] arguments) => playwright!.Chromium.LaunchAsync(new()
    {
        ExecutablePath = "/usr/bin/chromium",
        Headless = true,
        Args = ["--no-sandbox", "--disable-gpu", "--autoplay-policy=no-user-gesture-required", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", .. arguments],
    });

    /// <summary>
    /// A fresh browser context and page, the viewport big enough for the catalog and the desktop, with the browser
    /// <paramref name="permissions"/> granted (such as <c>clipboard-read</c>).
    /// </summary>
    public async Task<IPage> NewPageAsync(params string[] permissions)
    {
        var context = await Browser.NewContextAsync(new()
        {
            BaseURL = WebAddress.ToString(),
            ViewportSize = new() { Width = 1366, Height = 900 },
            Permissions = permissions,
        });
        context.SetDefaultTimeout(20_000);
        return await context.NewPageAsync();
    }

    /// <summary>A new plain user, created through the admin API; returns the username (password: <see cref="UserPassword"/>).</summary>
    public async Task<string> NewUserAsync(string prefix = "webuser")
    {
        var username = prefix + Guid.NewGuid().ToString("N")[..6];
        using var admin = await Api.AdminClientAsync();
        (await admin.PostAsJsonAsync("/api/v1/users", new { username, password = UserPassword, role = "user" })).EnsureSuccessStatusCode();
        return username;
    }

    /// <summary>Logs in through the login page and waits for the catalog.</summary>
    public static async Task LogInAsync(IPage page, string username, string password)
    {
        await page.GotoAsync("login");
        await page.GetByLabel("Username").FillAsync(username);
        await page.GetByLabel("Password").FillAsync(password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Log in" }).ClickAsync();
        await page.GetByRole(AriaRole.Heading, new() { Name = "Catalog" }).WaitForAsync();
    }

    /// <summary>
    /// Runs an X client against a session's X server, as the agent can (with the display's X authority), in a UTF-8
    /// locale.
    /// </summary>
    public async Task<ProcessResult> RunInSessionDisplayAsync(string sessionId, string program, string[] arguments, TimeSpan? timeout = null)
    {
        var records = System.Text.Json.JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(Agent.DataDirectory, "sessions.json"))).RootElement;
        var record = records.EnumerateArray().Single(r => r.GetProperty("SessionId").GetString() == sessionId);
        var display = ":" + record.GetProperty("Display").GetInt32();
        var authority = Path.Combine(Agent.DataDirectory, "sessions", sessionId, "run", "Xauthority");
        return await ProcessRunner.RunAsync(program, arguments,
            new Dictionary<string, string> { ["DISPLAY"] = display, ["XAUTHORITY"] = authority, ["LANG"] = "C.UTF-8" }, timeout);
    }

    /// <summary>
    /// Saves a screenshot: into docs/screenshots/ for the README when STREAMSPACE_SCREENSHOTS=docs, otherwise into
    /// the test output, so that an ordinary test run does not rewrite tracked files.
    /// </summary>
    public static async Task ScreenshotAsync(IPage page, string name)
    {
        var directory = Environment.GetEnvironmentVariable("STREAMSPACE_SCREENSHOTS") == "docs"
            ? Path.Combine(Repository.Root, "docs", "screenshots")
            : Path.Combine(AppContext.BaseDirectory, "screenshots");
        Directory.CreateDirectory(directory);
        await page.ScreenshotAsync(new() { Path = Path.Combine(directory, name) });
    }

    /// <summary>
    /// Stops the web process and starts a new one on the same address, as a redeploy would, with
    /// <paramref name="environment"/> added to its settings and the fixture's (until the next restart).
    /// </summary>
    public async Task RestartWebAsync(IReadOnlyDictionary<string, string>? environment = null)
    {
        if (web is { HasExited: false })
        {
            web.Kill(entireProcessTree: true);
            await web.WaitForExitAsync();
        }

        web?.Dispose();
        web = await StartWebAsync(environment);
    }

    private async Task<Process> StartWebAsync(IReadOnlyDictionary<string, string>? environment)
    {
        var assembly = Repository.BuiltAssembly("StreamSpace.Web");
        if (!File.Exists(assembly))
        {
            throw new InvalidOperationException($"{assembly} is missing; build StreamSpace.Web first.");
        }

        // The same address after a restart, so pages and cookies carry over.
        WebAddress ??= new Uri($"http://127.0.0.1:{PostgresServer.FreePort()}/");
        var start = new ProcessStartInfo("dotnet", [assembly])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            // Like `dotnet run`: the content root is the project, where the static web assets manifest points.
            WorkingDirectory = Path.Combine(Repository.Root, "StreamSpace.Web"),
        };
        start.Environment["ASPNETCORE_URLS"] = WebAddress.ToString().TrimEnd('/');
        start.Environment["ASPNETCORE_ENVIRONMENT"] = "Testing";
        start.Environment["services__api__http__0"] = Api.BaseAddress.ToString().TrimEnd('/');
        start.Environment["ConnectionStrings__streamspace"] = Api.ConnectionString;
        // As `./streamspace up` does: the browser opens the viewer's WebSocket on the API itself.
        start.Environment["VIEWER_VNC_PORT"] = Api.BaseAddress.Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        // A fresh home for each start, as a new pod would have: ASP.NET's default key folder (~/.aspnet) cannot carry
        // the sign-in cookies' keys over a restart, only the database can.
        var home = Directory.CreateTempSubdirectory("streamspace-web-home-").FullName;
        homes.Add(home);
        start.Environment["HOME"] = home;
        foreach (var (name, value) in options.WebEnvironment.Concat(environment ?? new Dictionary<string, string>()))
        {
            start.Environment[name] = value;
        }
        start.Environment["Logging__LogLevel__Default"] = "Warning";
        var process = Process.Start(start) ?? throw new InvalidOperationException("could not start StreamSpace.Web");
        process.OutputDataReceived += (_, e) => Append(e.Data);
        process.ErrorDataReceived += (_, e) => Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        using var http = new HttpClient { BaseAddress = WebAddress };
        await Eventually.TrueAsync(async () =>
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"StreamSpace.Web exited with {process.ExitCode}: {WebOutput}");
            }

            try
            {
                return (await http.GetAsync("alive")).IsSuccessStatusCode;
            }
            catch (HttpRequestException)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(30), "StreamSpace.Web to serve");
        return process;
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (webOutput)
        {
            webOutput.AppendLine(line);
        }
    }

    public async Task DisposeAsync()
    {
        if (Browser is not null)
        {
            await Browser.CloseAsync();
        }

        playwright?.Dispose();
        if (web is { HasExited: false })
        {
            web.Kill(entireProcessTree: true);
            await web.WaitForExitAsync();
        }

        web?.Dispose();
        foreach (var home in homes)
        {
            Directory.Delete(home, recursive: true);
        }

        if (Agent is not null)
        {
            await Agent.DisposeAsync();
        }

        if (Api is not null)
        {
            await Api.DisposeAsync();
        }
    }
}

/// <summary>
/// What a <see cref="WebFixture"/> starts besides its defaults: settings for the API, environment for the web
/// process, the web's address (when something else must know it first, as an OpenID provider's redirect URIs do),
/// and whether a local agent runs.
/// </summary>
internal sealed record WebStackOptions
{
    public IReadOnlyDictionary<string, string?> ApiSettings { get; init; } = new Dictionary<string, string?>();

    public IReadOnlyDictionary<string, string> WebEnvironment { get; init; } = new Dictionary<string, string>();

    public Uri? WebAddress { get; init; }

    public bool WithAgent { get; init; } = true;
}
