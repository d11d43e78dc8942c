using Microsoft.Extensions.Configuration;
using StreamSpace.Agent;
using StreamSpace.Settings;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Agent;

public sealed class AgentSettingsTests
{
    private static readonly Dictionary<string, string> Valid = new()
    {
        ["CONTROL_PLANE_URL"] = "ws://127.0.0.1:1/agent/ws",
        ["AGENT_ID"] = "test-agent",
        ["AGENT_KEY"] = "not-a-real-key",
    };

    [Theory]
    [InlineData("HEARTBEAT_INTERVAL", "soon", "HEARTBEAT_INTERVAL has an invalid value 'soon': expected a duration such as 30s, 1m")]
    [InlineData("HEARTBEAT_INTERVAL", "0s", "HEARTBEAT_INTERVAL must be between 1s and 5m")]
    [InlineData("CONTROL_PLANE_URL", "streamspace-api:8000", "CONTROL_PLANE_URL has an invalid value")]
    [InlineData("CONTROL_PLANE_URL", "ftp://streamspace-api/agent/ws", "CONTROL_PLANE_URL has an invalid value")]
    [InlineData("PLATFORM", "docker", "PLATFORM has an invalid value 'docker': expected one of local, kubernetes")]
    [InlineData("AGENT_KEY", null, "AGENT_KEY is required")]
    [InlineData("LOCAL_UID_RANGE", "500-600", "LOCAL_UID_RANGE has an invalid value '500-600': expected FIRST-LAST, at or above 1000")]
    [InlineData("LOCAL_ISOLATION", "some", "LOCAL_ISOLATION has an invalid value 'some': expected one of accounts, none")]
    public async Task A_bad_setting_exits_with_one_line_that_names_it_and_the_accepted_forms(string setting, string? value, string expected)
    {
        var result = await StartupErrors.RunWithSettingAsync("StreamSpace.Agent", Valid, setting, value);
        StartupErrors.AssertOneLine(result, expected);
    }

    [Fact]
    public async Task A_local_agent_refuses_a_data_folder_that_session_accounts_cannot_reach_or_a_start_without_root()
    {
        // A folder only its owner may enter, like /root: the homes inside would be out of the session accounts' reach.
        var closed = Directory.CreateTempSubdirectory("streamspace-closed-").FullName;
        try
        {
            var result = await StartupErrors.RunWithSettingAsync("StreamSpace.Agent", Valid, "AGENT_DATA_DIR", Path.Combine(closed, "agent"));
            StartupErrors.AssertOneLine(result, Environment.IsPrivilegedProcess
                ? $"AGENT_DATA_DIR is {Path.Combine(closed, "agent")}, inside {closed}, which other accounts cannot pass through"
                : "LOCAL_ISOLATION is accounts, which needs root");
        }
        finally
        {
            Directory.Delete(closed, recursive: true);
        }
    }

    [Theory]
    [InlineData("30s", 30)]
    [InlineData("1m", 60)]
    [InlineData("00:00:30", 30)]
    [InlineData("1m30s", 90)]
    public void Heartbeat_interval_accepts_the_documented_forms(string text, int seconds)
    {
        var settings = Bind(new() { ["HEARTBEAT_INTERVAL"] = text });
        Assert.Equal(TimeSpan.FromSeconds(seconds), settings.HeartbeatInterval);
    }

    [Fact]
    public void Heartbeat_interval_defaults_to_30_seconds()
    {
        Assert.Equal(TimeSpan.FromSeconds(30), Bind([]).HeartbeatInterval);
    }

    [Theory]
    [InlineData("ws://streamspace-api:8000/agent/ws", "ws://streamspace-api:8000/agent/ws", false)]
    [InlineData("http://streamspace-api:8000", "ws://streamspace-api:8000/agent/ws", true)]
    [InlineData("https://streamspace.example.com/", "wss://streamspace.example.com/agent/ws", true)]
    [InlineData("wss://streamspace.example.com/agent/ws", "wss://streamspace.example.com/agent/ws", false)]
    public void Control_plane_url_is_normalised_to_the_hub_and_the_change_is_reported(string configured, string expected, bool changed)
    {
        var (url, change) = AgentSettings.NormalizeControlPlaneUrl(new Uri(configured));
        Assert.Equal(expected, url.ToString());
        Assert.Equal(changed, change is not null);
    }

    private static AgentSettings Bind(Dictionary<string, string?> extra)
    {
        var values = Valid.ToDictionary(kv => kv.Key, kv => (string?)kv.Value);
        foreach (var (key, value) in extra)
        {
            values[key] = value;
        }

        return SettingsBinder.Bind<AgentSettings>(new ConfigurationBuilder().AddInMemoryCollection(values).Build());
    }
}
