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
    private readonly string configPath;
    private readonly Dictionary<string, object> config;
    private readonly StringBuilder output;

    private OidcProvider(Process process, string configPath, Dictionary<string, object> config, StringBuilder output, Uri issuer)
    {
        this.process = process;
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
        return new OidcProvider(process, configPath, config, output, issuer);
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
