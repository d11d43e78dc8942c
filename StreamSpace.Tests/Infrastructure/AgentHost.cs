using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using StreamSpace.Agent;
using StreamSpace.Agent.Commands;
using StreamSpace.Agent.ControlPlane;
using StreamSpace.Agent.Platforms.Local;

namespace StreamSpace.Tests.Infrastructure;

/// <summary>
/// The real agent — its host, control-plane client and local platform with real Xvnc sessions — running
/// in the test process, configured the way the agent process is: through its environment settings.
/// </summary>
public sealed class AgentHost : IAsyncDisposable
{
    private readonly IHost host;

    private AgentHost(IHost host, string dataDirectory)
    {
        this.host = host;
        DataDirectory = dataDirectory;
    }

    public string DataDirectory { get; }

    /// <summary>The home folder of a user's sessions on this agent.</summary>
    public string HomeOf(Guid userId) => Path.Combine(DataDirectory, "homes", userId.ToString());

    public ControlPlaneClient Client => host.Services.GetRequiredService<ControlPlaneClient>();

    public CommandExecutor Commands => host.Services.GetRequiredService<CommandExecutor>();

    public LocalPlatform Platform => host.Services.GetRequiredService<LocalPlatform>();

    public StreamSpace.Agent.Recording.SessionRecordings Recordings => host.Services.GetRequiredService<StreamSpace.Agent.Recording.SessionRecordings>();

    /// <param name="services">Changes to the agent's services after its own, e.g. a VNC server standing in for the sessions'.</param>
    public static async Task<AgentHost> StartAsync(Uri hubUrl, string agentId, string agentKey, string? dataDirectory = null,
        IReadOnlyDictionary<string, string?>? settings = null, Action<IServiceCollection>? services = null)
    {
        dataDirectory ??= Directory.CreateTempSubdirectory("streamspace-agent-").FullName;
        var host = await StartHostAsync(hubUrl, agentId, agentKey, new Dictionary<string, string?>
        {
            ["PLATFORM"] = "local",
            ["AGENT_DATA_DIR"] = dataDirectory,
            // CI runs as root, so the isolated mode is the one tested; a developer's run as themselves cannot create accounts.
            ["LOCAL_ISOLATION"] = Environment.IsPrivilegedProcess ? "accounts" : "none",
        }, settings, services);
        return new AgentHost(host, dataDirectory);
    }

    /// <summary>
    /// The real agent host, configured through its settings as the process is: the hub and credential, a 1 s
    /// heartbeat, then the platform's settings, then the test's own.
    /// </summary>
    public static async Task<IHost> StartHostAsync(Uri hubUrl, string agentId, string agentKey,
        IReadOnlyDictionary<string, string?> platformSettings, IReadOnlyDictionary<string, string?>? settings,
        Action<IServiceCollection>? services = null)
    {
        var values = new Dictionary<string, string?>
        {
            ["CONTROL_PLANE_URL"] = hubUrl.ToString(),
            ["AGENT_ID"] = agentId,
            ["AGENT_KEY"] = agentKey,
            ["HEARTBEAT_INTERVAL"] = "1s",
        };
        foreach (var (key, value) in platformSettings.Concat(settings ?? new Dictionary<string, string?>()))
        {
            values[key] = value;
        }

        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { EnvironmentName = "Testing" });
        builder.Configuration.AddInMemoryCollection(values);
        builder.AddStreamSpaceAgent();
        services?.Invoke(builder.Services);
        var host = builder.Build();
        await host.StartAsync();
        return host;
    }

    public async Task WaitUntilConnectedAsync(TimeSpan? timeout = null) =>
        await Eventually.TrueAsync(() => Task.FromResult(Client.IsConnected), timeout ?? TimeSpan.FromSeconds(20), "the agent to connect");

    /// <summary>Stops the agent host, leaving its sessions running, as a crashed or restarted agent would.</summary>
    public async Task StopAsync()
    {
        await host.StopAsync();
        host.Dispose();
    }

    /// <summary>
    /// Stops the agent, then every session it still runs, so no Xvnc outlives the test. The host stops first: a start
    /// still in flight then either ends before its processes begin, or is recorded and stopped here.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        try
        {
            await host.StopAsync();
        }
        catch (ObjectDisposedException)
        {
            // Already stopped by the test, which left its sessions running on purpose for another agent to recover.
            return;
        }

        var platform = host.Services.GetRequiredService<StreamSpace.Agent.Platforms.ISessionPlatform>();
        foreach (var session in await platform.ListSessionsAsync(CancellationToken.None))
        {
            try
            {
                await platform.StopAsync(session.SessionId, CancellationToken.None);
            }
            catch (Exception e) when (e is IOException or InvalidOperationException)
            {
                // Stop the others all the same; a leaked Xvnc would outlive the test run.
                Console.Error.WriteLine($"Could not stop session {session.SessionId}: {e.Message}");
            }
        }

        host.Dispose();
        await RemoveSessionAccountsAsync(DataDirectory);
    }

    /// <summary>
    /// Removes the OS accounts an agent created for its users (those whose home is in its data folder), so test runs
    /// do not fill LOCAL_UID_RANGE on a developer's machine. Their sessions must have ended.
    /// </summary>
    public static async Task RemoveSessionAccountsAsync(string dataDirectory)
    {
        var homes = Path.Combine(Path.GetFullPath(dataDirectory), "homes") + "/";
        var accounts = (await File.ReadAllLinesAsync("/etc/passwd")).Select(line => line.Split(':'))
            .Where(fields => fields.Length >= 7 && fields[0].StartsWith("ss-", StringComparison.Ordinal) && fields[5].StartsWith(homes, StringComparison.Ordinal))
            .Select(fields => fields[0]);
        foreach (var account in accounts)
        {
            var result = await ProcessRunner.RunAsync("userdel", [account]);
            if (result.ExitCode != 0)
            {
                Console.Error.WriteLine($"Could not remove the test account {account}: {result.StandardError}");
            }
        }
    }
}

public static class Eventually
{
    public static async Task TrueAsync(Func<Task<bool>> condition, TimeSpan timeout, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"Timed out after {timeout.TotalSeconds:0}s waiting for {what}.");
            }

            await Task.Delay(100);
        }
    }

    /// <summary>Polls until <paramref name="attempt"/> returns a value, and returns it.</summary>
    public static async Task<T> ValueAsync<T>(Func<Task<T?>> attempt, TimeSpan timeout, string what) where T : class
    {
        T? value = null;
        await TrueAsync(async () => (value = await attempt()) is not null, timeout, what);
        return value!;
    }
}

public static class Templates
{
    public static readonly StreamSpace.Contracts.SessionTemplate Xterm = new("xterm", Image: null, Command: "xterm", VncPort: 5900,
        Cpu: null, Memory: null, Env: new Dictionary<string, string>(), PersistentHome: true, IdleTimeoutSeconds: 1800, MaxDurationSeconds: null);
}
