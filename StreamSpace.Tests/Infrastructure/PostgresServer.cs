using System.Net;
using System.Net.Sockets;
using Npgsql;

namespace StreamSpace.Tests.Infrastructure;

/// <summary>
/// A throwaway PostgreSQL cluster in a temporary folder on a free loopback port, with fsync off and password (SCRAM)
/// authentication only, as <c>./streamspace test</c> starts it: other accounts on the machine cannot get in.
/// Tests that stop the database use their own; the rest share <see cref="SharedPostgres"/>.
/// </summary>
public sealed class PostgresServer : IAsyncDisposable
{
    private readonly string directory;
    private readonly string bin;

    private PostgresServer(string directory, string bin, int port)
    {
        this.directory = directory;
        this.bin = bin;
        Port = port;
    }

    public int Port { get; }

    /// <summary>The superuser's password, generated for this cluster.</summary>
    public string Password { get; } = Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(24));

    private string DataDirectory => Path.Combine(directory, "data");

    public string ConnectionString(string database = "postgres") =>
        $"Host=127.0.0.1;Port={Port};Username=postgres;Password={Password};Database={database};Pooling=true";

    public static async Task<PostgresServer> StartAsync()
    {
        var bin = Directory.GetDirectories("/usr/lib/postgresql").Select(d => Path.Combine(d, "bin"))
            .Where(d => File.Exists(Path.Combine(d, "initdb"))).Order().LastOrDefault()
            ?? throw new InvalidOperationException("PostgreSQL is not installed; run ./streamspace test, which installs it.");
        // Mode 0700: it is also the socket folder, so only the cluster's owner can use the socket.
        var directory = Directory.CreateTempSubdirectory("streamspace-pg-").FullName;
        var server = new PostgresServer(directory, bin, FreePort());

        // initdb reads the password from a file of mode 0600 (a command line would show it to every account).
        var passwordFile = Path.Combine(directory, "pwfile");
        await File.WriteAllTextAsync(passwordFile, server.Password + "\n");
        File.SetUnixFileMode(passwordFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        if (Environment.UserName == "root")
        {
            await ProcessRunner.RunCheckedAsync("chown", "-R", "postgres:postgres", directory);
        }

        await server.AsOwnerAsync("initdb", "-D", server.DataDirectory, "-U", "postgres", "--auth=scram-sha-256", $"--pwfile={passwordFile}", "--no-sync");
        File.Delete(passwordFile);
        await server.StartAgainAsync();
        return server;
    }

    public Task StartAgainAsync() => AsOwnerAsync("pg_ctl", "-D", DataDirectory, "-w", "-s", "-l", Path.Combine(directory, "log"), "-o",
        $"-p {Port} -k {directory} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off", "start");

    public Task StopAsync() => AsOwnerAsync("pg_ctl", "-D", DataDirectory, "-w", "-s", "-m", "immediate", "stop");

    /// <summary>Creates an empty database and returns its connection string.</summary>
    public Task<string> CreateDatabaseAsync(string prefix = "test") => CreateDatabaseAsync(ConnectionString(), prefix);

    /// <summary>Creates an empty database on the server and returns its connection string.</summary>
    public static async Task<string> CreateDatabaseAsync(string serverConnectionString, string prefix)
    {
        var name = $"{prefix}_{Guid.NewGuid():N}";
        await using var connection = new NpgsqlConnection(serverConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"CREATE DATABASE {name}", connection);
        await command.ExecuteNonQueryAsync();
        return new NpgsqlConnectionStringBuilder(serverConnectionString) { Database = name }.ConnectionString;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await StopAsync();
        }
        catch (InvalidOperationException)
        {
            // Already stopped by the test.
        }

        Directory.Delete(directory, recursive: true);
    }

    private Task AsOwnerAsync(string program, params string[] arguments) =>
        Environment.UserName == "root"
            ? ProcessRunner.RunCheckedAsync("runuser", ["-u", "postgres", "--", Path.Combine(bin, program), .. arguments])
            : ProcessRunner.RunCheckedAsync(Path.Combine(bin, program), arguments);

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}

/// <summary>
/// The PostgreSQL server most tests share: the one <c>./streamspace test</c> started (STREAMSPACE_TEST_POSTGRES),
/// or else one started here for this test run. Each fixture takes a fresh database on it.
/// </summary>
public static class SharedPostgres
{
    private static readonly Lazy<Task<Func<string, Task<string>>>> Server = new(StartAsync);

    public static async Task<string> CreateDatabaseAsync(string prefix = "test") => await (await Server.Value)(prefix);

    private static async Task<Func<string, Task<string>>> StartAsync()
    {
        if (Environment.GetEnvironmentVariable("STREAMSPACE_TEST_POSTGRES") is { Length: > 0 } external)
        {
            return prefix => PostgresServer.CreateDatabaseAsync(external, prefix);
        }

        var server = await PostgresServer.StartAsync();
        AppDomain.CurrentDomain.ProcessExit += (_, _) => server.DisposeAsync().AsTask().GetAwaiter().GetResult();
        return prefix => server.CreateDatabaseAsync(prefix);
    }
}
