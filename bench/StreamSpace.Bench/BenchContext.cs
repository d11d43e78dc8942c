using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace StreamSpace.Bench;

/// <summary>
/// What every section shares: the running API and agent, a signed-in admin client, the report being written and the
/// targets table that Program.cs prints after the last section.
/// </summary>
public sealed class BenchContext(
    bool quick, string work, Uri api, HttpClient http, string token, string connectionString,
    BenchProcess apiProcess, BenchProcess agentProcess, string agentData, IReadOnlyDictionary<string, string> environment)
{
    private readonly StringBuilder report = new();
    private readonly List<string> targets = [];
    private readonly List<string> notes = [];

    public bool Quick => quick;

    public int Repetitions => quick ? 1 : 3;

    /// <summary>A fresh temporary folder for this run's logs and state.</summary>
    public string Work => work;

    public Uri Api => api;

    /// <summary>Signed in as the admin.</summary>
    public HttpClient Http => http;

    public string Token => token;

    public string ConnectionString => connectionString;

    public BenchProcess ApiProcess => apiProcess;

    public BenchProcess AgentProcess => agentProcess;

    /// <summary>The agent's AGENT_DATA_DIR (session folders with their VNC passwords live under it).</summary>
    public string AgentData => agentData;

    /// <summary>PATH, HOME and the runtime settings every process of the system under test starts with.</summary>
    public IReadOnlyDictionary<string, string> Environment => environment;

    public string Report => report.ToString();

    public IReadOnlyList<string> Targets => targets;

    public IReadOnlyList<string> Notes => notes;

    /// <summary>Prints a line and adds it to docs/benchmarks.md.</summary>
    public void Line(string text)
    {
        Console.WriteLine(text);
        report.AppendLine(text);
    }

    /// <summary>A row of the "Against the targets" table.</summary>
    public void Target(string target, string measured, bool met) => targets.Add($"| {target} | {measured} | {(met ? "yes" : "no")} |");

    /// <summary>A sentence for the closing notes (what was not measured, and why).</summary>
    public void Note(string text) => notes.Add(text);

    /// <summary>Launches a session and waits until it runs; returns the session as the API shows it.</summary>
    public async Task<JsonElement> LaunchAsync(string template = "xterm")
    {
        var created = await (await http.PostAsJsonAsync("/api/v1/sessions", new { template })).Content.ReadFromJsonAsync<JsonElement>();
        var id = created.GetProperty("id").GetString()!;
        while (true)
        {
            var current = await http.GetFromJsonAsync<JsonElement>($"/api/v1/sessions/{id}");
            switch (current.GetProperty("state").GetString())
            {
                case "running": return current;
                case "failed": throw new InvalidOperationException($"session {id} failed: {current.GetProperty("failure_reason")}");
            }

            await Task.Delay(10);
        }
    }

    /// <summary>A fresh single-use viewer URL for the session's /vnc WebSocket.</summary>
    public async Task<Uri> VncUrlAsync(string id)
    {
        var ticket = await (await http.PostAsync($"/api/v1/sessions/{id}/connect", null)).Content.ReadFromJsonAsync<JsonElement>();
        return new Uri(new UriBuilder(api) { Scheme = "ws" }.Uri, ticket.GetProperty("url").GetString());
    }

    public static async Task Until(Func<Task<bool>> condition, string what, TimeSpan? timeout = null)
    {
        var limit = timeout ?? TimeSpan.FromSeconds(60);
        for (var i = 0; i < limit.TotalMilliseconds / 100; i++)
        {
            if (await condition())
            {
                return;
            }

            await Task.Delay(100);
        }

        throw new TimeoutException($"{what} did not come up within {limit.TotalSeconds:0} s");
    }

    public static async Task<T?> Try<T>(Func<Task<T>> action) where T : class
    {
        try
        {
            return await action();
        }
        catch (HttpRequestException)
        {
            return null;
        }
    }

    public static Task UntilListening(int port, string what) => Until(async () =>
    {
        try
        {
            using var client = new TcpClient();
            await client.ConnectAsync(IPAddress.Loopback, port);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }, what);

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
