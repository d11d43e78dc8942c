using System.Diagnostics;
using System.Text;
using System.Text.Json;

namespace StreamSpace.Tests.Infrastructure;

/// <summary>An account of the test provider: the claims its ID tokens carry.</summary>
public sealed record OidcAccount(string PreferredUsername, string? Name = null, string? Email = null, string[]? Groups = null);

/// <summary>
/// A real OpenID provider: npm's oidc-provider (a certified implementation) run by node on a loopback port, from
/// StreamSpace.Tests/Oidc/provider.js, with one confidential client that must use PKCE. Its login page signs in
/// any of its accounts by the account's sub, with any password.
/// </summary>
public sealed class OidcProvider : IAsyncDisposable
{
    public const string ClientId = "streamspace-web";
    public const string ClientSecret = "test-client-secret-for-the-oidc-provider";

    private static readonly string Folder = Path.Combine(Repository.Root, "StreamSpace.Tests", "Oidc");
    private static readonly SemaphoreSlim InstallLock = new(1, 1);

    private readonly Process process;
    private readonly Uri redirectUri;
    private readonly string configPath;
    private readonly Dictionary<string, object> config;
    private readonly StringBuilder output;

    private OidcProvider(Process process, string configPath, Dictionary<string, object> config, StringBuilder output, Uri issuer, Uri redirectUri)
    {
        this.process = process;
        this.redirectUri = redirectUri;
        this.configPath = configPath;
        this.config = config;
        this.output = output;
        Issuer = issuer;
    }

    /// <summary>The issuer URL, without a trailing slash (as the provider's tokens name it).</summary>
    public Uri Issuer { get; }

    public string IssuerText => Issuer.ToString().TrimEnd('/');

    /// <summary>What node printed, for failure messages.</summary>
    public string Output
    {
        get
        {
            lock (output)
            {
                return output.ToString();
            }
        }
    }

    /// <summary>Starts the provider with a client whose redirect URIs are the web UI's at <paramref name="webAddress"/>.</summary>
    public static async Task<OidcProvider> StartAsync(Uri webAddress, IReadOnlyDictionary<string, OidcAccount> accounts)
    {
        await EnsureInstalledAsync();
        var web = webAddress.ToString().TrimEnd('/');
        var config = new Dictionary<string, object>
        {
            ["port"] = 0,
            ["client"] = new Dictionary<string, object>
            {
                ["client_id"] = ClientId,
                ["client_secret"] = ClientSecret,
                ["redirect_uris"] = new[] { $"{web}/signin-oidc" },
                ["post_logout_redirect_uris"] = new[] { $"{web}/signout-callback-oidc" },
            },
            ["accounts"] = accounts.ToDictionary(a => a.Key, a => Claims(a.Value)),
        };
        var configPath = Path.Combine(Directory.CreateTempSubdirectory("streamspace-oidc-").FullName, "config.json");
        await File.WriteAllTextAsync(configPath, JsonSerializer.Serialize(config));

        var start = new ProcessStartInfo("node", [Path.Combine(Folder, "provider.js"), configPath])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = Folder,
        };
        var output = new StringBuilder();
        var listening = new TaskCompletionSource<Uri>(TaskCreationOptions.RunContinuationsAsynchronously);
        var process = Process.Start(start) ?? throw new InvalidOperationException("could not start node");
        process.OutputDataReceived += (_, e) =>
        {
            Append(output, e.Data);
            if (e.Data?.StartsWith("listening ", StringComparison.Ordinal) == true)
            {
                listening.TrySetResult(new Uri(e.Data["listening ".Length..]));
            }
        };
        process.ErrorDataReceived += (_, e) => Append(output, e.Data);
        process.Exited += (_, _) => listening.TrySetException(new InvalidOperationException($"the OpenID provider exited: {output}"));
        process.EnableRaisingEvents = true;
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var issuer = await listening.Task.WaitAsync(TimeSpan.FromSeconds(30));
        return new OidcProvider(process, configPath, config, output, issuer, new Uri($"{web}/signin-oidc"));
    }

    /// <summary>Adds or changes an account; its next sign-in gets the new claims.</summary>
    public async Task SetAccountAsync(string subject, OidcAccount account)
    {
        ((Dictionary<string, Dictionary<string, object?>>)config["accounts"])[subject] = Claims(account);
        // Written whole under another name, then renamed: the provider never reads half a file.
        var temporary = configPath + ".new";
        await File.WriteAllTextAsync(temporary, JsonSerializer.Serialize(config));
        File.Move(temporary, configPath, overwrite: true);
    }

    /// <summary>
    /// An ID token for the account, as a relying party gets one: the authorization code flow with PKCE driven over
    /// plain HTTP (the provider's login form, then the code redeemed at its token endpoint with the client's secret).
    /// </summary>
    public async Task<string> IssueIdTokenAsync(string subject, string nonce)
    {
        using var http = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false, CookieContainer = new System.Net.CookieContainer() }) { BaseAddress = Issuer };
        var verifier = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        var challenge = Convert.ToBase64String(System.Security.Cryptography.SHA256.HashData(Encoding.ASCII.GetBytes(verifier))).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        var authorize = $"auth?client_id={ClientId}&response_type=code&scope=openid%20profile%20email%20groups&state=s&nonce={Uri.EscapeDataString(nonce)}" +
            $"&redirect_uri={Uri.EscapeDataString(redirectUri.ToString())}&code_challenge={challenge}&code_challenge_method=S256";

        // The authorization request sends the browser to the login form; the form's post sends it back to the
        // authorization endpoint, which redirects to the client with the code.
        var interaction = (await http.GetAsync(authorize)).Headers.Location!;
        (await http.GetAsync(interaction)).EnsureSuccessStatusCode();
        var resume = (await http.PostAsync(interaction, new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["prompt"] = "login",
            ["login"] = subject,
            ["password"] = "any password",
        }))).Headers.Location!;
        var callback = (await http.GetAsync(resume)).Headers.Location!;
        var code = System.Web.HttpUtility.ParseQueryString(callback.Query)["code"]
            ?? throw new InvalidOperationException($"the provider answered without a code: {callback}");

        using var token = new HttpRequestMessage(HttpMethod.Post, "token")
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["grant_type"] = "authorization_code",
                ["code"] = code,
                ["redirect_uri"] = redirectUri.ToString(),
                ["code_verifier"] = verifier,
            }),
        };
        token.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Basic",
            Convert.ToBase64String(Encoding.ASCII.GetBytes($"{ClientId}:{ClientSecret}")));
        var answer = await http.SendAsync(token);
        var body = await answer.Content.ReadAsStringAsync();
        Assert.True(answer.IsSuccessStatusCode, $"the token endpoint answered {answer.StatusCode}: {body}");
        return JsonDocument.Parse(body).RootElement.GetProperty("id_token").GetString()!;
    }

    private static Dictionary<string, object?> Claims(OidcAccount account) => new()
    {
        ["preferred_username"] = account.PreferredUsername,
        ["name"] = account.Name,
        ["email"] = account.Email,
        ["groups"] = account.Groups ?? [],
    };

    /// <summary>
    /// oidc-provider from the lock file: `./streamspace test` installs it before the run (and CI with it); a plain
    /// `dotnet test` installs it here the first time.
    /// </summary>
    private static async Task EnsureInstalledAsync()
    {
        await InstallLock.WaitAsync();
        try
        {
            if (!File.Exists(Path.Combine(Folder, "node_modules", "oidc-provider", "package.json")))
            {
                var result = await ProcessRunner.RunAsync("npm", ["ci", "--no-audit", "--no-fund", "--prefix", Folder], timeout: TimeSpan.FromMinutes(3));
                if (result.ExitCode != 0)
                {
                    throw new InvalidOperationException($"npm ci in {Folder} failed: {result.StandardError}");
                }
            }
        }
        finally
        {
            InstallLock.Release();
        }
    }

    private static void Append(StringBuilder output, string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (output)
        {
            output.AppendLine(line);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!process.HasExited)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }

        process.Dispose();
        Directory.Delete(Path.GetDirectoryName(configPath)!, recursive: true);
    }
}
