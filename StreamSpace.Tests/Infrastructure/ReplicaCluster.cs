using System.Diagnostics;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Dapper;
using Npgsql;

namespace StreamSpace.Tests.Infrastructure;

/// <summary>
/// One API process: the built <c>StreamSpace.Api.dll</c> on a loopback port, configured through its environment as a
/// deployment configures it. Its output is kept, so a failing test can show it, and so the test learns its replica id.
/// </summary>
public sealed partial class ApiReplica : IAsyncDisposable
{
    private readonly Process process;
    private readonly StringBuilder output = new();
    private readonly TaskCompletionSource<Guid> registered = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private ApiReplica(string name, int port, Process process)
    {
        Name = name;
        Port = port;
        this.process = process;
    }

    public string Name { get; }

    public int Port { get; }

    public Uri BaseAddress => new($"http://127.0.0.1:{Port}");

    public int ProcessId => process.Id;

    public bool HasExited => process.HasExited;

    /// <summary>The replica id it registered under in <c>api_replicas</c> (new at every start).</summary>
    public Task<Guid> IdAsync() => registered.Task.WaitAsync(TimeSpan.FromSeconds(30));

    /// <summary>What the process wrote so far (its log), for a failing test's message.</summary>
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

    /// <summary>Starts the process and waits until its <c>/health</c> answers 200.</summary>
    public static async Task<ApiReplica> StartAsync(string name, int port, IReadOnlyDictionary<string, string> environment)
    {
        var start = new ProcessStartInfo("dotnet", [Repository.BuiltAssembly("StreamSpace.Api")])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = Path.GetDirectoryName(Repository.BuiltAssembly("StreamSpace.Api"))!,
        };
        start.Environment.Clear();
        foreach (var inherited in new[] { "PATH", "HOME", "DOTNET_ROOT" })
        {
            if (Environment.GetEnvironmentVariable(inherited) is { } value)
            {
                start.Environment[inherited] = value;
            }
        }

        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }

        start.Environment["ASPNETCORE_URLS"] = $"http://127.0.0.1:{port}";
        var replica = new ApiReplica(name, port, new Process { StartInfo = start });
        replica.process.OutputDataReceived += (_, e) => replica.Capture(e.Data);
        replica.process.ErrorDataReceived += (_, e) => replica.Capture(e.Data);
        replica.process.Start();
        replica.process.BeginOutputReadLine();
        replica.process.BeginErrorReadLine();
        await replica.WaitHealthyAsync();
        return replica;
    }

    public HttpClient CreateClient() => new() { BaseAddress = BaseAddress };

    public async Task WaitHealthyAsync(TimeSpan? timeout = null)
    {
        using var client = CreateClient();
        client.Timeout = TimeSpan.FromSeconds(2);
        await Eventually.TrueAsync(async () =>
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"API replica {Name} exited with {process.ExitCode}:\n{Output}");
            }

            try
            {
                return (await client.GetAsync("/health")).IsSuccessStatusCode;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                // Refused, or a probe slower than 2 s while the process starts on a busy machine: ask again.
                return false;
            }
        }, timeout ?? TimeSpan.FromSeconds(60), $"API replica {Name} to be healthy");
    }

    /// <summary>kill -9: the process ends at once, its sockets reset, nothing of its drain runs.</summary>
    public async Task KillAsync()
    {
        process.Kill();
        await process.WaitForExitAsync();
    }

    /// <summary>SIGTERM, as Kubernetes stops a pod; the process drains, then exits on its own.</summary>
    public Task TerminateAsync() => ProcessRunner.RunCheckedAsync("kill", "-TERM", process.Id.ToString());

    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        await process.WaitForExitAsync(cts.Token);
        return process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        if (!process.HasExited)
        {
            process.Kill();
            await process.WaitForExitAsync();
        }

        process.Dispose();
    }

    private void Capture(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (output)
        {
            output.AppendLine(line);
        }

        if (RegisteredLine().Match(line) is { Success: true } match)
        {
            registered.TrySetResult(Guid.Parse(match.Groups[1].Value));
        }
    }

    [GeneratedRegex("Registered as API replica ([0-9a-f-]{36})")]
    private static partial Regex RegisteredLine();
}

/// <summary>
/// Debian's HAProxy in front of the replicas, started by the test with a generated config: round robin, no
/// stickiness, health checks on <c>/health</c> every 500 ms (down after 2 failures), and a refused or 503 dial
/// retried on another server, as a production balancer is set up.
/// </summary>
public sealed class HaproxyBalancer : IAsyncDisposable
{
    private readonly Process process;
    private readonly string directory;

    private HaproxyBalancer(Process process, string directory, int port)
    {
        this.process = process;
        this.directory = directory;
        Port = port;
    }

    public int Port { get; }

    public Uri BaseAddress => new($"http://127.0.0.1:{Port}");

    public static async Task<HaproxyBalancer> StartAsync(IReadOnlyList<int> serverPorts)
    {
        var port = PostgresServer.FreePort();
        var directory = Directory.CreateTempSubdirectory("streamspace-haproxy-").FullName;
        var config = Path.Combine(directory, "haproxy.cfg");
        await File.WriteAllTextAsync(config, HaproxyConfig.Render([port], serverPorts, maxConnections: 4096, checkInterval: "500ms", downAfter: 2));
        var haproxy = File.Exists("/usr/sbin/haproxy") ? "/usr/sbin/haproxy"
            : throw new InvalidOperationException("HAProxy is not installed; run ./streamspace test, which installs it.");
        var start = new ProcessStartInfo(haproxy, ["-db", "-f", config]) { RedirectStandardOutput = true, RedirectStandardError = true };
        var process = Process.Start(start)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var balancer = new HaproxyBalancer(process, directory, port);
        using var client = new HttpClient { BaseAddress = balancer.BaseAddress, Timeout = TimeSpan.FromSeconds(2) };
        await Eventually.TrueAsync(async () =>
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"HAProxy exited with {process.ExitCode}");
            }

            try
            {
                return (await client.GetAsync("/health")).IsSuccessStatusCode;
            }
            catch (HttpRequestException)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(20), "HAProxy to serve");
        return balancer;
    }

    public async ValueTask DisposeAsync()
    {
        if (!process.HasExited)
        {
            process.Kill();
            await process.WaitForExitAsync();
        }

        process.Dispose();
        Directory.Delete(directory, recursive: true);
    }
}

/// <summary>
/// Two API processes on one fresh database of the suite's PostgreSQL, HAProxy in front of them, and one real local
/// agent whose <c>CONTROL_PLANE_URL</c> is the balancer. Shared by a test class; a test that stops a replica brings
/// the cluster back with <see cref="EnsureRunningAsync"/> (the next test calls it too).
/// </summary>
public sealed class ReplicaCluster : IAsyncLifetime
{
    public const string AgentId = "cluster-agent";

    private readonly ApiReplica?[] replicas = new ApiReplica?[2];
    private readonly int[] ports = [PostgresServer.FreePort(), PostgresServer.FreePort()];

    /// <summary>Settings for the cluster's agent beyond the defaults (read by <see cref="InitializeAsync"/>).</summary>
    public IReadOnlyDictionary<string, string?> AgentSettings { get; init; } = new Dictionary<string, string?>();

    public string ConnectionString { get; private set; } = "";

    public HaproxyBalancer Balancer { get; private set; } = null!;

    public AgentHost Agent { get; private set; } = null!;

    public IReadOnlyList<ApiReplica> Replicas => [.. replicas.Select(r => r ?? throw new InvalidOperationException("A replica is down."))];

    public async Task InitializeAsync()
    {
        ConnectionString = await SharedPostgres.CreateDatabaseAsync("cluster");
        // One after the other: the first applies the migrations, so the second's start is short.
        replicas[0] = await StartReplicaAsync(0);
        replicas[1] = await StartReplicaAsync(1);
        Balancer = await HaproxyBalancer.StartAsync(ports);
        using var admin = await AdminClientAsync(Balancer.BaseAddress);
        var created = await (await admin.PostAsJsonAsync("/api/v1/agents", new { id = AgentId })).AssertJsonAsync(System.Net.HttpStatusCode.Created);
        // Room for the sessions a whole test class leaves running (the concurrent-launch test alone starts 10).
        Agent = await AgentHost.StartAsync(new Uri($"ws://127.0.0.1:{Balancer.Port}/agent/ws"), AgentId, created.GetProperty("key").GetString()!,
            settings: new Dictionary<string, string?>(AgentSettings) { ["MAX_SESSIONS"] = "30" });
        await Agent.WaitUntilConnectedAsync();
    }

    /// <summary>Restarts any replica a test stopped, on its port, and waits until the balancer counts it up again.</summary>
    public async Task EnsureRunningAsync()
    {
        var restarted = false;
        for (var i = 0; i < replicas.Length; i++)
        {
            if (replicas[i] is not { HasExited: false })
            {
                if (replicas[i] is { } dead)
                {
                    await dead.DisposeAsync();
                }

                replicas[i] = await StartReplicaAsync(i);
                restarted = true;
            }
        }

        if (restarted)
        {
            // rise 2 at inter 500ms: the balancer sends it traffic again within about a second.
            await Task.WhenAll(replicas.Select(r => r!.WaitHealthyAsync()));
            await Agent.WaitUntilConnectedAsync();
        }
    }

    /// <summary>The replica that holds the agent's connection now, as <c>agents.replica_id</c> says.</summary>
    public async Task<(ApiReplica Holder, ApiReplica Other)> AgentHolderAsync(TimeSpan? timeout = null)
    {
        ApiReplica? holder = null;
        await Eventually.TrueAsync(async () =>
        {
            var id = await AgentReplicaIdAsync();
            foreach (var replica in replicas)
            {
                if (replica is { HasExited: false } && await replica.IdAsync() == id)
                {
                    holder = replica;
                }
            }

            return holder is not null;
        }, timeout ?? TimeSpan.FromSeconds(10), "the agent to be held by a running replica");
        return (holder!, replicas.First(r => r != holder)!);
    }

    public async Task<Guid?> AgentReplicaIdAsync() => (await AgentConnectionAsync())?.ReplicaId;

    /// <summary>The agent's current connection as the database records it: which replica, and when its hello was accepted.</summary>
    public async Task<(Guid ReplicaId, DateTime ConnectedAt)?> AgentConnectionAsync()
    {
        await using var connection = new NpgsqlConnection(ConnectionString);
        return await connection.QuerySingleOrDefaultAsync<(Guid ReplicaId, DateTime ConnectedAt)?>(
            "SELECT replica_id, connected_at FROM agents WHERE id = @AgentId AND status = 'online' AND replica_id IS NOT NULL", new { AgentId });
    }

    /// <summary>Terminates the replica's connection that LISTENs for notifications, as a network blip or a PostgreSQL restart would.</summary>
    public async Task KillListeningConnectionAsync(ApiReplica replica) => Assert.Equal(1, await KillListeningConnectionsAsync(replica));

    /// <summary>Terminates the replica's listening connection if it has one now; how many were terminated.</summary>
    public async Task<int> KillListeningConnectionsAsync(ApiReplica replica)
    {
        await using var connection = new NpgsqlConnection(ConnectionString);
        return await connection.ExecuteScalarAsync<int>(
            """
            SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                WHERE datname = current_database() AND application_name = @name AND query LIKE 'LISTEN%') t
            """, new { name = ApplicationName(replica.Name) });
    }

    public async Task<HttpClient> AdminClientAsync(Uri baseAddress) =>
        await ClientForAsync(baseAddress, ApiFactory.AdminUsername, ApiFactory.AdminPassword);

    public static async Task<HttpClient> ClientForAsync(Uri baseAddress, string username, string password)
    {
        var client = new HttpClient { BaseAddress = baseAddress };
        var login = await client.PostAsJsonAsync("/api/v1/auth/login", new { username, password });
        login.EnsureSuccessStatusCode();
        var body = await login.Content.ReadFromJsonAsync<JsonElement>();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", body.GetProperty("token").GetString());
        return client;
    }

    /// <summary>The logs of both replicas, for a failing assertion's message.</summary>
    public string Logs => string.Join("\n", replicas.Where(r => r is not null).Select(r => $"===== replica {r!.Name} =====\n{r.Output}"));

    public async Task DisposeAsync()
    {
        if (Agent is not null)
        {
            await Agent.DisposeAsync();
        }

        if (Balancer is not null)
        {
            await Balancer.DisposeAsync();
        }

        foreach (var replica in replicas)
        {
            if (replica is not null)
            {
                await replica.DisposeAsync();
            }
        }
    }

    private static string ApplicationName(string replicaName) => $"streamspace-{replicaName}";

    private Task<ApiReplica> StartReplicaAsync(int index)
    {
        var name = ((char)('a' + index)).ToString();
        return ApiReplica.StartAsync(name, ports[index], ReplicaEnvironment(name));
    }

    /// <summary>A replica's environment on this cluster's database; a test may start one more replica with it.</summary>
    public Dictionary<string, string> ReplicaEnvironment(string name) => new()
    {
        ["ASPNETCORE_ENVIRONMENT"] = "Testing",
        ["ConnectionStrings__streamspace"] = new NpgsqlConnectionStringBuilder(ConnectionString) { ApplicationName = ApplicationName(name) }.ConnectionString,
        ["JWT_SECRET"] = ApiFactory.JwtSecret,
        ["ADMIN_USERNAME"] = ApiFactory.AdminUsername,
        ["ADMIN_PASSWORD"] = ApiFactory.AdminPassword,
        // The sign-in limits keep their defaults: only failures count, and the limit tests count across replicas.
        ["SESSION_QUOTA"] = "30",
        ["SHUTDOWN_DRAIN_DELAY"] = "1s",
        ["DATA_PORT"] = "0",
        ["REPLICA_ADDRESS"] = "127.0.0.1",
    };
}
