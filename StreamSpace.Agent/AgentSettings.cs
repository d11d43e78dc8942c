using StreamSpace.Settings;

namespace StreamSpace.Agent;

public enum AgentPlatform
{
    Local,
    Kubernetes,
}

/// <summary>How the local platform keeps users apart.</summary>
public enum LocalIsolation
{
    /// <summary>Each StreamSpace user's sessions run under an unprivileged OS account of their own (needs root).</summary>
    Accounts,

    /// <summary>Development only: sessions run as the agent's own account, so they can reach the agent and each other.</summary>
    None,
}

/// <summary>How viewers' bytes travel between the agent and the control plane.</summary>
public enum DataPath
{
    /// <summary>A data connection per viewer (protocol version 2).</summary>
    Data,

    /// <summary>The credit mux on the control socket (the agent then says hello with protocol version 1).</summary>
    Mux,
}

public enum DirectData
{
    /// <summary>Dial the replica's own data URL first when it is safe to (<see cref="Tunnel.DataDialer.MayDialDirect"/>).</summary>
    Auto,

    /// <summary>Always dial the control plane's <c>/agent/data</c>: for agents that cannot reach the replicas' addresses.</summary>
    Off,
}

public enum SpliceMode
{
    On,
    Off,
}

/// <summary>Everything the agent reads from its environment. Every optional value has a default, so none is ever unset.</summary>
public sealed class AgentSettings : IValidatedSettings
{
    public const string HubPath = "/agent/ws";

    [Setting("CONTROL_PLANE_URL", Required = true, Help = "the API's agent hub, e.g. ws://streamspace-api:8000/agent/ws")]
    public Uri ControlPlaneUrl { get; set; } = new("ws://localhost:8000/agent/ws");

    [Setting("AGENT_ID", Required = true, Help = "this agent's id, as registered with POST /api/v1/agents")]
    public string AgentId { get; set; } = "";

    [Setting("AGENT_KEY", Required = true, Secret = true, Help = "the key returned once when the agent was registered")]
    public string AgentKey { get; set; } = "";

    [Setting("PLATFORM")]
    public AgentPlatform Platform { get; set; } = AgentPlatform.Local;

    [Setting("HEARTBEAT_INTERVAL", Help = "how often the agent reports to the control plane")]
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(30);

    [Setting("REGION")]
    public string Region { get; set; } = "default";

    [Setting("MAX_SESSIONS", Help = "how many sessions this agent runs at most")]
    public int MaxSessions { get; set; } = 10;

    [Setting("AGENT_HEALTH_PORT", Help = "the port of /alive and /health for Kubernetes probes; 0 turns them off")]
    public int HealthPort { get; set; }

    // As root, the default is outside /root: session accounts must be able to pass through its parents to their homes.
    [Setting("AGENT_DATA_DIR", Help = "where the local platform keeps session state and users' home folders")]
    public string DataDirectory { get; set; } = Environment.IsPrivilegedProcess
        ? "/var/lib/streamspace-agent"
        : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.DoNotVerify), "streamspace-agent");

    [Setting("RECORDINGS_DIR", Help = "where session recordings are written (files 0600, the agent's alone; a folder it owns made 0700, one it does not, as a volume's root, only checked writable); empty: <AGENT_DATA_DIR>/recordings. On Kubernetes, a PersistentVolume's mount")]
    public string RecordingsDirectory { get; set; } = "";

    /// <summary>The folder of recordings: <see cref="RecordingsDirectory"/>, or recordings/ in the data directory.</summary>
    public string RecordingsPath => Path.GetFullPath(string.IsNullOrWhiteSpace(RecordingsDirectory) ? Path.Combine(DataDirectory, "recordings") : RecordingsDirectory);

    [Setting("LOCAL_ISOLATION", Help = "local platform: accounts (each user's sessions under their own OS account; needs root) or none (development only)")]
    public LocalIsolation LocalIsolation { get; set; } = LocalIsolation.Accounts;

    [Setting("LOCAL_UID_RANGE", Help = "local platform: the uids (and gids) of the accounts the agent creates for users, e.g. 70000-79999")]
    public string LocalUidRange { get; set; } = "70000-79999";

    /// <summary>The first and last uid of <see cref="LocalUidRange"/>.</summary>
    public (int First, int Last) LocalUids
    {
        get
        {
            var parts = LocalUidRange.Split('-', 2, StringSplitOptions.TrimEntries);
            return (int.Parse(parts[0], System.Globalization.CultureInfo.InvariantCulture), int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture));
        }
    }

    [Setting("SESSION_NAMESPACE", Help = "kubernetes: the namespace of session pods; empty: the agent's own namespace (or default outside a cluster)")]
    public string SessionNamespace { get; set; } = "";

    [Setting("SESSION_STORAGE_CLASS", Help = "kubernetes: the storage class of users' home volumes; empty: the cluster's default")]
    public string SessionStorageClass { get; set; } = "";

    [Setting("SESSION_HOME_SIZE", Help = "kubernetes: the size of each user's home volume, e.g. 5Gi")]
    public string SessionHomeSize { get; set; } = "5Gi";

    [Setting("SESSION_IMAGE_PULL_SECRETS", Help = "kubernetes: comma-separated Secrets in the session namespace for pulling session images")]
    public string SessionImagePullSecrets { get; set; } = "";

    [Setting("SESSION_START_TIMEOUT", Help = "kubernetes: how long a session may wait for resources before it fails")]
    public TimeSpan SessionStartTimeout { get; set; } = TimeSpan.FromMinutes(5);

    [Setting("SESSION_TUNNEL", Help = "kubernetes: how the VNC tunnel reaches pods: podip, portforward, or auto (podip in the cluster, else portforward)")]
    public Platforms.Kubernetes.SessionTunnel SessionTunnel { get; set; } = Platforms.Kubernetes.SessionTunnel.Auto;

    [Setting("ORPHAN_GRACE_PERIOD", Help = "how long a session the control plane does not own keeps running before the agent stops it")]
    public TimeSpan OrphanGracePeriod { get; set; } = TimeSpan.FromMinutes(5);

    [Setting("AGENT_DATA_PATH", Help = "how viewers' bytes travel: data (a connection per viewer) or mux (on the control socket, as protocol version 1)")]
    public DataPath DataPath { get; set; } = DataPath.Data;

    [Setting("AGENT_DIRECT_DATA", Help = "auto: dial the waiting replica's own data URL first (1 s) when it is safe; off: always the control plane's /agent/data (agents outside the cluster)")]
    public DirectData DirectData { get; set; } = DirectData.Auto;

    // Off by default: on loopback the bench measured the user-space copy faster and cheaper than splice(2) with its
    // poll threads (run of 2026-11-30 04:2x, docs/benchmarks-analysis.md).
    [Setting("AGENT_SPLICE", Help = "on: move viewers' bytes with splice(2) where both ends are plain sockets; off: copy in user space (the default, measured faster)")]
    public SpliceMode Splice { get; set; } = SpliceMode.Off;

    /// <summary>The protocol version the agent says hello with: <see cref="DataPath"/> chooses it.</summary>
    public int ProtocolVersion => DataPath == DataPath.Mux ? StreamSpace.Contracts.AgentProtocol.MuxVersion : StreamSpace.Contracts.AgentProtocol.Version;

    /// <summary>The hub URL as the agent dials it, after <see cref="NormalizeControlPlaneUrl"/>.</summary>
    public Uri HubUrl => NormalizeControlPlaneUrl(ControlPlaneUrl).Url;

    public void Validate()
    {
        if (ControlPlaneUrl.Scheme is not ("ws" or "wss" or "http" or "https"))
        {
            throw new InvalidSettingException("CONTROL_PLANE_URL", $"has an invalid value '{ControlPlaneUrl}': expected a ws://, wss://, http:// or https:// URL such as ws://streamspace-api:8000/agent/ws.");
        }

        if (HeartbeatInterval < TimeSpan.FromSeconds(1) || HeartbeatInterval > TimeSpan.FromMinutes(5))
        {
            throw new InvalidSettingException("HEARTBEAT_INTERVAL", $"must be between 1s and 5m: expected {Duration.AcceptedForms}.");
        }

        if (OrphanGracePeriod < TimeSpan.Zero)
        {
            throw new InvalidSettingException("ORPHAN_GRACE_PERIOD", $"must not be negative: expected {Duration.AcceptedForms}.");
        }

        if (SessionStartTimeout < TimeSpan.FromSeconds(1))
        {
            throw new InvalidSettingException("SESSION_START_TIMEOUT", $"must be at least 1s: expected {Duration.AcceptedForms}.");
        }

        if (!string.IsNullOrWhiteSpace(SessionHomeSize) && !System.Text.RegularExpressions.Regex.IsMatch(SessionHomeSize.Trim(), "^[0-9]+(\\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$"))
        {
            throw new InvalidSettingException("SESSION_HOME_SIZE", $"has an invalid value '{SessionHomeSize}': expected a Kubernetes quantity such as 5Gi.");
        }

        if (MaxSessions < 1)
        {
            throw new InvalidSettingException("MAX_SESSIONS", "must be at least 1.");
        }

        if (Platform == AgentPlatform.Local)
        {
            ValidateLocalIsolation();
        }
    }

    private void ValidateLocalIsolation()
    {
        var range = LocalUidRange.Split('-', 2, StringSplitOptions.TrimEntries);
        // Below 1000 are Debian's system accounts; 65534 is nobody.
        if (range.Length != 2 || !int.TryParse(range[0], out var first) || !int.TryParse(range[1], out var last) || first < 1000 || last < first || (first <= 65534 && last >= 65534))
        {
            throw new InvalidSettingException("LOCAL_UID_RANGE", $"has an invalid value '{LocalUidRange}': expected FIRST-LAST, at or above 1000 and not spanning 65534 (nobody), e.g. 70000-79999.");
        }

        if (LocalIsolation == LocalIsolation.Accounts && !Environment.IsPrivilegedProcess)
        {
            throw new InvalidSettingException("LOCAL_ISOLATION", "is accounts, which needs root to run each user's sessions under their own account: run the agent as root, or set LOCAL_ISOLATION=none (development only: sessions then run as the agent's account and can reach it and each other).");
        }
    }

    /// <summary>
    /// Accepts what people paste: an http(s) URL becomes ws(s), and a URL without a path gets <c>/agent/ws</c>.
    /// Returns what changed, so the agent can log it.
    /// </summary>
    public static (Uri Url, string? Change) NormalizeControlPlaneUrl(Uri configured)
    {
        var builder = new UriBuilder(configured);
        var changes = new List<string>();
        if (builder.Scheme is "http" or "https")
        {
            var scheme = builder.Scheme == "https" ? "wss" : "ws";
            changes.Add($"scheme {builder.Scheme} -> {scheme}");
            var explicitPort = !configured.IsDefaultPort;
            builder.Scheme = scheme;
            if (!explicitPort)
            {
                builder.Port = -1;
            }
        }

        if (builder.Path is "" or "/")
        {
            builder.Path = HubPath;
            changes.Add($"path -> {HubPath}");
        }

        return (builder.Uri, changes.Count == 0 ? null : string.Join(", ", changes));
    }
}
