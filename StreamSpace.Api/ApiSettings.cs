using System.Text;
using StreamSpace.Settings;

namespace StreamSpace.Api;

/// <summary>Everything the API reads from its environment. Missing or invalid values stop the process at start.</summary>
public sealed class ApiSettings : IValidatedSettings
{
    public const string ConnectionName = "streamspace";
    public const int MinimumJwtSecretBytes = 32;

    [Setting("ConnectionStrings__streamspace", Required = true, Secret = true, Help = "the PostgreSQL connection string")]
    public string ConnectionString { get; set; } = "";

    [Setting("JWT_SECRET", Required = true, Secret = true, Help = "at least 32 bytes, e.g. from `openssl rand -base64 48`")]
    public string JwtSecret { get; set; } = "";

    [Setting("JWT_LIFETIME", Help = "how long a login token lasts")]
    public TimeSpan JwtLifetime { get; set; } = TimeSpan.FromHours(8);

    [Setting("SESSION_MAX_LIFETIME", Help = "how long after signing in with a password a user may keep refreshing their token")]
    public TimeSpan SessionMaxLifetime { get; set; } = TimeSpan.FromDays(7);

    [Setting("ADMIN_USERNAME")]
    public string AdminUsername { get; set; } = "admin";

    [Setting("ADMIN_PASSWORD", Secret = true, Help = "the bootstrap admin's password; the account is kept in sync with it at every start")]
    public string? AdminPassword { get; set; }

    [Setting("LOGIN_ATTEMPTS_PER_MINUTE", Help = "failed logins allowed per minute for one username from one client address (also: failed current passwords per user)")]
    public int LoginAttemptsPerMinute { get; set; } = 10;

    [Setting("LOGIN_FAILURES_PER_ADDRESS", Help = "failed logins allowed per minute from one client address, whatever the usernames")]
    public int LoginFailuresPerAddress { get; set; } = 30;

    [Setting("LOGIN_FAILURES_PER_USERNAME", Help = "failed logins allowed per 5 minutes for one username from all addresses; a lock lasts 5 minutes at most")]
    public int LoginFailuresPerUsername { get; set; } = 50;

    [Setting("AGENT_AUTH_FAILURES_PER_MINUTE", Help = "refused agent connections (missing or wrong key) allowed per minute from one address")]
    public int AgentAuthFailuresPerMinute { get; set; } = 30;

    [Setting("AGENT_MISSED_HEARTBEATS", Help = "heartbeat intervals an agent may miss before it is marked offline")]
    public int AgentMissedHeartbeats { get; set; } = 3;

    [Setting("COMMAND_TIMEOUT", Help = "how long an agent command may go unanswered before it fails")]
    public TimeSpan CommandTimeout { get; set; } = TimeSpan.FromMinutes(5);

    [Setting("SESSION_QUOTA", Help = "active sessions each user may have at once")]
    public int SessionQuota { get; set; } = 5;

    [Setting("PROVISIONED_AGENT_ID", Help = "an agent whose credential comes from the deployment (AppHost or Helm) rather than the API")]
    public string? ProvisionedAgentId { get; set; }

    [Setting("PROVISIONED_AGENT_KEY", Secret = true, Help = "the provisioned agent's key; it authenticates that agent id only")]
    public string? ProvisionedAgentKey { get; set; }

    [Setting("SHUTDOWN_DRAIN_DELAY", Help = "on SIGTERM, how long this replica answers /health with 503 before it moves its agents, so balancers stop sending it work")]
    public TimeSpan ShutdownDrainDelay { get; set; } = TimeSpan.FromSeconds(2);

    [Setting("PUBLIC_URL", Help = "where users and agents outside the cluster reach StreamSpace, e.g. https://streamspace.example.com; empty: not advertised")]
    public string PublicUrl { get; set; } = "";

    [Setting("DATA_PORT", Help = "where agents' data connections (one per viewer) arrive; 0 picks a free port")]
    public int DataPort { get; set; } = 8001;

    [Setting("REPLICA_ADDRESS", Help = "the address agents dial this replica's DATA_PORT at (in Kubernetes the pod IP)")]
    public string ReplicaAddress { get; set; } = "127.0.0.1";

    [Setting("UPLOAD_MAX_BYTES", Help = "the largest file a user may upload into a session, in bytes")]
    public long UploadMaxBytes { get; set; } = 1L << 30;

    [Setting("RECORDING_RETENTION", Help = "how long a finished recording is kept; retention deletes it after that (e.g. 30d)")]
    public TimeSpan RecordingRetention { get; set; } = TimeSpan.FromDays(30);

    [Setting("RECORDING_MAX_TOTAL_BYTES", Help = "the most all recordings together may take on the agents, in bytes; retention deletes the oldest finished ones beyond it")]
    public long RecordingMaxTotalBytes { get; set; } = 50L << 30;

    [Setting("VNC_RELAY_BUFFER", Help = "bytes the VNC relay receives from a data connection at once, 4096 to 1048576")]
    public int VncRelayBuffer { get; set; } = 64 * 1024;

    [Setting("SHARING", Help = "whether owners may share their running sessions with other signed-in users: enabled or disabled")]
    public SharingSwitch Sharing { get; set; } = SharingSwitch.Enabled;

    [Setting("OIDC_ISSUER", Help = "the OpenID provider's issuer URL; set, users may sign in through it (see README, Identity)")]
    public string OidcIssuer { get; set; } = "";

    [Setting("OIDC_CLIENT_ID", Help = "the client id StreamSpace is registered under at the provider: the audience of its ID tokens")]
    public string OidcClientId { get; set; } = "";

    [Setting("OIDC_USERNAME_CLAIM", Help = "the ID token claim a new user's username comes from")]
    public string OidcUsernameClaim { get; set; } = "preferred_username";

    [Setting("OIDC_EMAIL_CLAIM", Help = "the ID token claim the user's email comes from")]
    public string OidcEmailClaim { get; set; } = "email";

    [Setting("OIDC_NAME_CLAIM", Help = "the ID token claim the user's display name comes from")]
    public string OidcNameClaim { get; set; } = "name";

    [Setting("OIDC_GROUPS_CLAIM", Help = "the ID token claim that lists the user's groups (or roles) at the provider")]
    public string OidcGroupsClaim { get; set; } = "groups";

    [Setting("OIDC_ADMIN_GROUPS", Help = "comma-separated values of the groups claim that make a user admin at each sign-in (and anyone else a plain user); empty: roles are set in StreamSpace only")]
    public string OidcAdminGroups { get; set; } = "";

    [Setting("LOCAL_LOGIN", Help = "false refuses password sign-in to everyone but the bootstrap admin (ADMIN_USERNAME)")]
    public bool LocalLogin { get; set; } = true;

    public bool OidcEnabled => OidcIssuer.Length > 0;

    /// <summary>The values of <see cref="OidcAdminGroups"/>, compared exactly, as the provider sends them.</summary>
    public IReadOnlySet<string> OidcAdminGroupSet =>
        OidcAdminGroups.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToHashSet(StringComparer.Ordinal);

    /// <summary>The agent hub's URL under <see cref="PublicUrl"/>, as agents outside the cluster should dial it; null when none is advertised.</summary>
    public Uri? PublicAgentHubUrl
    {
        get
        {
            if (PublicUrl is not { Length: > 0 })
            {
                return null;
            }

            var url = new Uri(PublicUrl);
            return new UriBuilder(url)
            {
                Scheme = url.Scheme == Uri.UriSchemeHttps ? "wss" : "ws",
                Port = url.IsDefaultPort ? -1 : url.Port,
                Path = url.AbsolutePath.TrimEnd('/') + Features.Agents.AgentsExtensions.HubPath,
            }.Uri;
        }
    }

    /// <summary>True for the bootstrap admin while ADMIN_PASSWORD is set: its password then changes only through the secret.</summary>
    public bool ManagesPasswordOf(string username) =>
        !string.IsNullOrEmpty(AdminPassword) && string.Equals(username, AdminUsername, StringComparison.OrdinalIgnoreCase);

    public void Validate()
    {
        if (Encoding.UTF8.GetByteCount(JwtSecret) < MinimumJwtSecretBytes)
        {
            throw new InvalidSettingException("JWT_SECRET", $"is too short: it needs at least {MinimumJwtSecretBytes} bytes, e.g. from `openssl rand -base64 48`.");
        }

        if (JwtLifetime < TimeSpan.FromMinutes(1) || JwtLifetime > TimeSpan.FromDays(7))
        {
            throw new InvalidSettingException("JWT_LIFETIME", "must be between 1m and 7d.");
        }

        if (SessionMaxLifetime < TimeSpan.FromMinutes(1) || SessionMaxLifetime > TimeSpan.FromDays(365))
        {
            throw new InvalidSettingException("SESSION_MAX_LIFETIME", "must be between 1m and 365d.");
        }

        if (AdminPassword is { Length: > 0 and < Features.Users.PasswordRules.MinimumLength })
        {
            throw new InvalidSettingException("ADMIN_PASSWORD", $"is too short: it needs at least {Features.Users.PasswordRules.MinimumLength} characters.");
        }

        if (ShutdownDrainDelay < TimeSpan.Zero || ShutdownDrainDelay > TimeSpan.FromMinutes(1))
        {
            throw new InvalidSettingException("SHUTDOWN_DRAIN_DELAY", "must be between 0s and 1m.");
        }

        if (AgentMissedHeartbeats < 1)
        {
            throw new InvalidSettingException("AGENT_MISSED_HEARTBEATS", "must be at least 1.");
        }

        if (string.IsNullOrEmpty(ProvisionedAgentId) != string.IsNullOrEmpty(ProvisionedAgentKey))
        {
            throw new InvalidSettingException(string.IsNullOrEmpty(ProvisionedAgentId) ? "PROVISIONED_AGENT_ID" : "PROVISIONED_AGENT_KEY",
                "must be set together with " + (string.IsNullOrEmpty(ProvisionedAgentId) ? "PROVISIONED_AGENT_KEY." : "PROVISIONED_AGENT_ID."));
        }

        if (ProvisionedAgentKey is { Length: > 0 and < Features.Agents.AgentKeys.MinimumLength })
        {
            throw new InvalidSettingException("PROVISIONED_AGENT_KEY", $"is too short: it needs at least {Features.Agents.AgentKeys.MinimumLength} characters.");
        }

        if (ProvisionedAgentId is { Length: > 0 } && !System.Text.RegularExpressions.Regex.IsMatch(ProvisionedAgentId, Features.Agents.AgentIdRules.Pattern))
        {
            throw new InvalidSettingException("PROVISIONED_AGENT_ID", $"has an invalid value '{ProvisionedAgentId}': use lowercase letters, digits, '.' and '-'.");
        }

        if (PublicUrl is { Length: > 0 } && !(Uri.TryCreate(PublicUrl, UriKind.Absolute, out var publicUrl) && publicUrl.Scheme is "http" or "https"))
        {
            throw new InvalidSettingException("PUBLIC_URL", $"has an invalid value '{PublicUrl}': expected an http:// or https:// URL such as https://streamspace.example.com.");
        }

        if (DataPort is < 0 or > 65535)
        {
            throw new InvalidSettingException("DATA_PORT", "must be a port number from 0 to 65535 (0: any free port).");
        }

        if (Uri.CheckHostName(ReplicaAddress) == UriHostNameType.Unknown)
        {
            throw new InvalidSettingException("REPLICA_ADDRESS", $"has an invalid value '{ReplicaAddress}': expected an IP address or host name agents can dial.");
        }

        if (UploadMaxBytes < 1)
        {
            throw new InvalidSettingException("UPLOAD_MAX_BYTES", "must be at least 1 byte.");
        }

        if (RecordingRetention < TimeSpan.FromMinutes(1))
        {
            throw new InvalidSettingException("RECORDING_RETENTION", "must be at least 1m.");
        }

        if (RecordingMaxTotalBytes < 1)
        {
            throw new InvalidSettingException("RECORDING_MAX_TOTAL_BYTES", "must be at least 1 byte.");
        }

        if (VncRelayBuffer is < 4096 or > 1024 * 1024)
        {
            throw new InvalidSettingException("VNC_RELAY_BUFFER", "must be from 4096 to 1048576 bytes.");
        }

        SignInSettings.Validate(OidcIssuer, OidcClientId, LocalLogin);
        foreach (var (name, value) in new[] { ("OIDC_USERNAME_CLAIM", OidcUsernameClaim), ("OIDC_EMAIL_CLAIM", OidcEmailClaim),
            ("OIDC_NAME_CLAIM", OidcNameClaim), ("OIDC_GROUPS_CLAIM", OidcGroupsClaim) })
        {
            if (value.Trim().Length == 0)
            {
                throw new InvalidSettingException(name, "must name a claim of the provider's ID tokens.");
            }
        }

        foreach (var (name, value) in new[]
        {
            ("LOGIN_ATTEMPTS_PER_MINUTE", LoginAttemptsPerMinute), ("LOGIN_FAILURES_PER_ADDRESS", LoginFailuresPerAddress),
            ("LOGIN_FAILURES_PER_USERNAME", LoginFailuresPerUsername), ("AGENT_AUTH_FAILURES_PER_MINUTE", AgentAuthFailuresPerMinute),
        })
        {
            if (value < 1)
            {
                throw new InvalidSettingException(name, "must be at least 1.");
            }
        }
    }
}

/// <summary>The global switch for sharing sessions (SHARING); each template has its own as well.</summary>
public enum SharingSwitch
{
    Enabled,
    Disabled,
}

public static class ApiSettingsExtensions
{
    public static ApiSettings AddApiSettings(this IHostApplicationBuilder builder)
    {
        var settings = SettingsBinder.Bind<ApiSettings>(builder.Configuration);
        builder.Services.AddSingleton(settings);
        return settings;
    }
}
