using System.Net;
using System.Net.Http.Json;
using Npgsql;
using StreamSpace.Agent.Platforms.Local;
using StreamSpace.Contracts;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Api.Features.Sessions;

/// <summary>
/// What a user's session can reach on a local agent, seen from inside it: a probe runs as the template's program and
/// writes what it saw into its own home. CI runs as root, so this is the isolated mode (LOCAL_ISOLATION=accounts).
/// </summary>
public sealed class SessionIsolationTests(SessionFixture fixture) : IClassFixture<SessionFixture>
{
    // The probe waits for the test to name its targets (known only once both sessions run), tries each, and writes one
    // line per target: allowed or denied. Its own display is the control that proves xdpyinfo works in the session.
    private const string Probe = """
        #!/bin/bash
        until [ -f "$HOME/probe-targets" ]; do sleep 0.1; done
        . "$HOME/probe-targets"
        try() { if "$@" >/dev/null 2>&1; then echo allowed; else echo denied; fi; }
        {
          echo "uid=$(id -u)"
          echo "user=$(id -un)"
          echo "other_home=$(try ls "$other_home")"
          echo "other_password=$(try cat "$other_password")"
          echo "other_vncpasswd=$(try cat "$other_vncpasswd")"
          echo "other_log=$(try cat "$other_log")"
          echo "data_dir=$(try ls "$data_dir")"
          echo "state_file=$(try cat "$data_dir/sessions.json")"
          echo "other_display=$(try xdpyinfo -display "$other_display")"
          echo "own_display=$(try xdpyinfo)"
          echo "postgres=$(try psql -w "host=127.0.0.1 port=$pg_port user=postgres dbname=postgres" -c 'select 1')"
          echo "postgres_error=$(psql -w "host=127.0.0.1 port=$pg_port user=postgres dbname=postgres" -c 'select 1' 2>&1 | head -n 1)"
        } >"$HOME/probe-result.tmp"
        env >"$HOME/probe-env"
        mv "$HOME/probe-result.tmp" "$HOME/probe-result"
        """;

    /// <summary>Everything a session's environment may hold: the allowlist, plus what bash itself sets, plus the session's own sound server (the default template has audio).</summary>
    private static readonly HashSet<string> AllowedVariables =
        ["PATH", "LANG", "HOME", "USER", "LOGNAME", "SHELL", "DISPLAY", "XAUTHORITY", "PULSE_SERVER", "PULSE_LATENCY_MSEC", "PWD", "OLDPWD", "SHLVL", "_"];

    [Fact]
    public async Task A_session_runs_as_its_users_own_account_and_reaches_nothing_of_the_agent_or_of_other_users()
    {
        Assert.True(Environment.IsPrivilegedProcess, "the isolated mode needs root; run the tests as root, as CI does");
        var template = await CreateProbeTemplateAsync();
        using var alice = await fixture.Api.NewUserClientAsync();
        using var bob = await fixture.Api.NewUserClientAsync();
        var a = await StartAsync(alice, template);
        var b = await StartAsync(bob, template);

        // The targets exist: a denied read below is a refusal, not a wrong path.
        Assert.True(Directory.Exists(b.Home) && File.Exists(b.AgentPassword) && File.Exists(b.VncPassword) && File.Exists(b.Log));
        var pgPort = new NpgsqlConnectionStringBuilder(fixture.Api.ConnectionString).Port;
        await GiveTargetsAsync(a, b, pgPort);
        await GiveTargetsAsync(b, a, pgPort);
        var seenByA = await ResultAsync(a);
        var seenByB = await ResultAsync(b);

        Assert.NotEqual("0", seenByA["uid"]);
        Assert.NotEqual(UnixFiles.EffectiveUid().ToString(System.Globalization.CultureInfo.InvariantCulture), seenByA["uid"]);
        Assert.NotEqual(seenByA["uid"], seenByB["uid"]);
        Assert.Equal(SessionAccounts.NameFor(a.UserId), seenByA["user"]);
        Assert.Equal(SessionAccounts.NameFor(b.UserId), seenByB["user"]);

        foreach (var seen in new[] { seenByA, seenByB })
        {
            Assert.Equal("allowed", seen["own_display"]);
            Assert.All(["other_home", "other_password", "other_vncpasswd", "other_log", "data_dir", "state_file", "other_display", "postgres"],
                target => Assert.True(seen[target] == "denied", $"{target} was {seen[target]} for {seen["user"]}"));
            Assert.Contains("password", seen["postgres_error"], StringComparison.OrdinalIgnoreCase);
        }

        foreach (var session in new[] { a, b })
        {
            var environment = (await File.ReadAllLinesAsync(Path.Combine(session.Home, "probe-env"))).Select(line => line.Split('=', 2)[0]).ToList();
            Assert.All(environment, name => Assert.True(AllowedVariables.Contains(name), $"the session's environment holds {name}"));
            Assert.Equal(UnixFiles.OwnerOnly, File.GetUnixFileMode(session.Home));
            Assert.Equal(UnixFiles.OwnerReadWrite, File.GetUnixFileMode(session.AgentPassword));
        }
    }

    [Fact]
    public async Task A_user_deleted_and_created_again_with_the_same_name_starts_with_an_empty_home()
    {
        using var admin = await fixture.Api.AdminClientAsync();
        var username = "again-" + Guid.NewGuid().ToString("N")[..6];
        Guid first;
        using (var user = await fixture.Api.NewUserClientAsync(username))
        {
            first = await user.UserIdAsync();
            var id = (await user.LaunchAsync()).Id;
            await user.WaitForStateAsync(id, SessionState.Running);
            await File.WriteAllTextAsync(Path.Combine(fixture.Agent.HomeOf(first), "diary.txt"), "private");
            await user.DeleteAsync($"/api/v1/sessions/{id}");
            await user.WaitForStateAsync(id, SessionState.Stopped);
        }

        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"/api/v1/users/{first}")).StatusCode);
        using var again = await fixture.Api.NewUserClientAsync(username);
        var second = await again.UserIdAsync();
        var next = (await again.LaunchAsync()).Id;
        await again.WaitForStateAsync(next, SessionState.Running);

        Assert.NotEqual(fixture.Agent.HomeOf(first), fixture.Agent.HomeOf(second));
        Assert.False(File.Exists(Path.Combine(fixture.Agent.HomeOf(second), "diary.txt")));
        Assert.NotEqual(SessionAccounts.NameFor(first), SessionAccounts.NameFor(second));
    }

    private sealed record ProbeSession(Guid UserId, string Id, string Home, int Display, string AgentPassword, string VncPassword, string Log);

    private async Task<string> CreateProbeTemplateAsync()
    {
        // Readable by every account: the probe runs as the session's.
        var folder = Directory.CreateTempSubdirectory("streamspace-probe-").FullName;
        File.SetUnixFileMode(folder, UnixFiles.PassThrough | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        var script = Path.Combine(folder, "probe.sh");
        await File.WriteAllTextAsync(script, Probe);
        File.SetUnixFileMode(script, UnixFiles.PassThrough | UnixFileMode.GroupRead | UnixFileMode.OtherRead);

        var name = "probe-" + Guid.NewGuid().ToString("N")[..6];
        using var admin = await fixture.Api.AdminClientAsync();
        var created = await admin.PostAsJsonAsync("/api/v1/templates", new { name, display_name = "Isolation probe", command = $"bash {script}" });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        return name;
    }

    private async Task<ProbeSession> StartAsync(HttpClient user, string template)
    {
        var userId = await user.UserIdAsync();
        var id = (await user.LaunchAsync(template)).Id;
        var running = await user.WaitForStateAsync(id, SessionState.Running);
        var session = Path.Combine(fixture.Agent.DataDirectory, "sessions", id);
        return new ProbeSession(userId, id, fixture.Agent.HomeOf(userId), running.PlatformMetadata.GetProperty("display").GetInt32(),
            Path.Combine(session, "password"), Path.Combine(session, "run", "vncpasswd"), Path.Combine(session, "session.log"));
    }

    private async Task GiveTargetsAsync(ProbeSession prober, ProbeSession other, int pgPort)
    {
        var targets = $"""
            other_home='{other.Home}'
            other_password='{other.AgentPassword}'
            other_vncpasswd='{other.VncPassword}'
            other_log='{other.Log}'
            data_dir='{fixture.Agent.DataDirectory}'
            other_display=':{other.Display}'
            pg_port={pgPort}
            """;
        // Written beside, then renamed: the probe never reads half a file. Root's new files are readable by the owner's account.
        var file = Path.Combine(prober.Home, "probe-targets");
        await File.WriteAllTextAsync(file + ".tmp", targets);
        File.Move(file + ".tmp", file);
    }

    private static async Task<Dictionary<string, string>> ResultAsync(ProbeSession session)
    {
        var file = Path.Combine(session.Home, "probe-result");
        await Eventually.TrueAsync(() => Task.FromResult(File.Exists(file)), TimeSpan.FromSeconds(30), $"the probe in session {session.Id} to report");
        return (await File.ReadAllLinesAsync(file)).Select(line => line.Split('=', 2)).ToDictionary(pair => pair[0], pair => pair.Length > 1 ? pair[1] : "");
    }
}
