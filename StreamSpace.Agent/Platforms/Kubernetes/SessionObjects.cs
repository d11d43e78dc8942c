using StreamSpace.Agent.Tunnel;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using k8s.Models;
using StreamSpace.Contracts;

namespace StreamSpace.Agent.Platforms.Kubernetes;

/// <summary>The names, labels and objects of one session in the cluster: a Deployment, its VNC password Secret, and the user's home PVC.</summary>
public static partial class SessionObjects
{
    public const string AppLabel = "app";
    public const string AppValue = "session";
    public const string SessionIdLabel = "session-id";
    public const string ManagedByLabel = "app.kubernetes.io/managed-by";
    public const string ManagedByValue = "streamspace";
    public const string UserLabel = "streamspace.io/user";

    /// <summary>On the pod template, so the pod watch (and an agent after a restart) knows each session's limits.</summary>
    public const string IdleTimeoutAnnotation = "streamspace.io/idle-timeout-seconds";
    public const string MaxDurationAnnotation = "streamspace.io/max-duration-seconds";

    /// <summary>On the Deployment and its pods, so that image pull failures seen on a pod name their template.</summary>
    public const string TemplateAnnotation = "streamspace.io/template";
    /// <summary>The Secret's key for TigerVNC's password file, which the session image's Xvnc reads (VNC_PASSWORD_FILE).</summary>
    public const string PasswordFileKey = "passwd";

    /// <summary>
    /// The Secret's key of agents before the password file: 8 hex characters as text, read by the image as VNC_PASSWORD.
    /// Still read, so that sessions started by such an agent stay reachable after an upgrade.
    /// </summary>
    public const string PasswordKey = "password";

    /// <summary>
    /// The Secret's key for the session's files key, which the session image's file service (the agent's files-serve)
    /// reads from its file (STREAMSPACE_FILES_KEY_FILE) and the agent from the Secret, so it is never in env or args.
    /// </summary>
    public const string FilesKeyKey = "files-key";

    /// <summary>The container port of the session's file service, named so the agent finds it on the pod.</summary>
    public const string FilesPortName = "files";
    public const int FilesPort = Files.FileServiceSettings.DefaultPort;

    /// <summary>Where the session's container sees the Secret; the password file is VNC_PASSWORD_FILE in it.</summary>
    public const string PasswordDirectory = "/var/run/secrets/streamspace-vnc";
    public const string HomePath = "/home/streamspace";
    public const int SessionUid = 1000;
    public const int DefaultVncPort = 5900;

    /// <summary>Everything this agent manages, and nothing a person labelled app=session by hand.</summary>
    public const string Selector = $"{AppLabel}={AppValue},{ManagedByLabel}={ManagedByValue}";

    public static string DeploymentName(string sessionId) => $"session-{sessionId}";

    public static string SecretName(string sessionId) => $"session-{sessionId}-vnc";

    public static string HomeClaimName(string username) => $"home-{SafeUsername(username)}";

    /// <summary>
    /// A username as a DNS label and label value: lowercase letters, digits and dashes. A name that had to change gets
    /// a hash of the original, so "Bob" and "bob" never share a home volume.
    /// </summary>
    public static string SafeUsername(string username)
    {
        var safe = NotDnsLabel().Replace(username.ToLowerInvariant(), "-").Trim('-');
        if (safe == username && safe.Length is > 0 and <= 40)
        {
            return safe;
        }

        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(username)))[..8];
        safe = safe.Length > 40 ? safe[..40].TrimEnd('-') : safe;
        return safe.Length == 0 ? hash : $"{safe}-{hash}";
    }

    public static Dictionary<string, string> Labels(SessionCommandPayload session) => new()
    {
        [AppLabel] = AppValue,
        [SessionIdLabel] = session.SessionId,
        [ManagedByLabel] = ManagedByValue,
        [UserLabel] = SafeUsername(session.Username),
    };

    public static int VncPort(SessionTemplate template) => template.VncPort > 0 ? template.VncPort : DefaultVncPort;

    public static V1Deployment Deployment(SessionCommandPayload session, AgentSettings settings)
    {
        var template = session.Template;
        if (string.IsNullOrWhiteSpace(template.Image))
        {
            throw new InvalidOperationException($"template '{template.Name}' has no image for the kubernetes platform");
        }

        var labels = Labels(session);
        var port = VncPort(template);
        var resources = new Dictionary<string, ResourceQuantity>();
        if (!string.IsNullOrWhiteSpace(template.Cpu))
        {
            resources["cpu"] = new ResourceQuantity(template.Cpu);
        }

        if (!string.IsNullOrWhiteSpace(template.Memory))
        {
            resources["memory"] = new ResourceQuantity(template.Memory);
        }

        // The password reaches Xvnc as the file itself, not as text: text through env and vncpasswd could not carry
        // arbitrary bytes, such as a zero, a newline or one that is not UTF-8.
        var env = new List<V1EnvVar>
        {
            new() { Name = "VNC_PASSWORD_FILE", Value = $"{PasswordDirectory}/{PasswordFileKey}" },
            new() { Name = "VNC_PORT", Value = port.ToString(System.Globalization.CultureInfo.InvariantCulture) },
            new() { Name = "STREAMSPACE_SESSION_ID", Value = session.SessionId },
            // The file service's key by its file's path: the key itself stays in the Secret's volume.
            new() { Name = "STREAMSPACE_FILES_KEY_FILE", Value = $"{PasswordDirectory}/{FilesKeyKey}" },
            new() { Name = "STREAMSPACE_FILES_PORT", Value = FilesPort.ToString(System.Globalization.CultureInfo.InvariantCulture) },
            // The template's clipboard directions, which the image's Xvnc enforces (SendCutText, AcceptCutText).
            new() { Name = "VNC_SEND_CUT_TEXT", Value = template.ClipboardToBrowser ? "1" : "0" },
            new() { Name = "VNC_ACCEPT_CUT_TEXT", Value = template.ClipboardToSession ? "1" : "0" },
            // Whether session.sh starts the session's PulseAudio (the template's audio).
            new() { Name = "STREAMSPACE_AUDIO", Value = template.Audio ? "1" : "0" },
        };
        // A template's entry never replaces the session's own settings above (in a pod the last of two names wins); the
        // API refuses such names, and a template stored before it did is filtered here.
        env.AddRange(template.Env.Where(e => env.All(own => own.Name != e.Key)).Select(e => new V1EnvVar { Name = e.Key, Value = e.Value }));
        // A Secret reference stays a reference: the kubelet reads the Secret (in the session namespace, where the pod
        // is), so its value passes through neither the control plane nor this agent.
        env.AddRange((template.SecretEnv ?? new Dictionary<string, SecretKeyRef>()).Select(e => new V1EnvVar
        {
            Name = e.Key,
            ValueFrom = new V1EnvVarSource { SecretKeyRef = new V1SecretKeySelector { Name = e.Value.Name, Key = e.Value.Key } },
        }));

        var container = new V1Container
        {
            Name = "session",
            Image = template.Image,
            // The VNC port first: the agent takes the first port as VNC's, as agents before the file service did.
            Ports =
            [
                new V1ContainerPort { ContainerPort = port, Name = "vnc", Protocol = "TCP" },
                new V1ContainerPort { ContainerPort = FilesPort, Name = FilesPortName, Protocol = "TCP" },
            ],
            Env = env,
            Resources = new V1ResourceRequirements { Requests = resources, Limits = new Dictionary<string, ResourceQuantity>(resources) },
            ReadinessProbe = new V1Probe { TcpSocket = new V1TCPSocketAction { Port = port }, PeriodSeconds = 2, FailureThreshold = 3 },
            SecurityContext = new V1SecurityContext
            {
                AllowPrivilegeEscalation = false,
                Capabilities = new V1Capabilities { Drop = ["ALL"] },
            },
            VolumeMounts =
            [
                new V1VolumeMount { Name = "vnc-password", MountPath = PasswordDirectory, ReadOnlyProperty = true },
                .. template.PersistentHome ? [new V1VolumeMount { Name = "home", MountPath = HomePath }] : Array.Empty<V1VolumeMount>(),
            ],
        };

        // Readable by the session's user through its group (fsGroup), and by no one else in the container.
        var passwordVolume = new V1Volume
        {
            Name = "vnc-password",
            Secret = new V1SecretVolumeSource
            {
                SecretName = SecretName(session.SessionId),
                Items = [new V1KeyToPath { Key = PasswordFileKey, Path = PasswordFileKey }, new V1KeyToPath { Key = FilesKeyKey, Path = FilesKeyKey }],
                DefaultMode = Convert.ToInt32("440", 8),
            },
        };

        return new V1Deployment
        {
            ApiVersion = "apps/v1",
            Kind = "Deployment",
            Metadata = new V1ObjectMeta
            {
                Name = DeploymentName(session.SessionId),
                Labels = labels,
                Annotations = new Dictionary<string, string> { [TemplateAnnotation] = template.Name, ["streamspace.io/username"] = session.Username },
            },
            Spec = new V1DeploymentSpec
            {
                Replicas = 1,
                Selector = new V1LabelSelector { MatchLabels = new Dictionary<string, string> { [AppLabel] = AppValue, [SessionIdLabel] = session.SessionId } },
                // The home volume is ReadWriteOnce: the old pod must be gone before a new one mounts it.
                Strategy = new V1DeploymentStrategy { Type = "Recreate" },
                Template = new V1PodTemplateSpec
                {
                    Metadata = new V1ObjectMeta { Labels = labels, Annotations = PodAnnotations(template) },
                    Spec = new V1PodSpec
                    {
                        // Sessions run users' programs: they get no Kubernetes API credentials.
                        AutomountServiceAccountToken = false,
                        SecurityContext = new V1PodSecurityContext
                        {
                            RunAsNonRoot = true,
                            RunAsUser = SessionUid,
                            RunAsGroup = SessionUid,
                            FsGroup = SessionUid,
                            SeccompProfile = new V1SeccompProfile { Type = "RuntimeDefault" },
                        },
                        ImagePullSecrets = PullSecrets(settings),
                        Containers = [container],
                        Volumes =
                        [
                            passwordVolume,
                            .. template.PersistentHome
                                ? [new V1Volume { Name = "home", PersistentVolumeClaim = new V1PersistentVolumeClaimVolumeSource { ClaimName = HomeClaimName(session.Username) } }]
                                : Array.Empty<V1Volume>(),
                        ],
                    },
                },
            },
        };
    }

    /// <summary>
    /// The session's VNC password as TigerVNC's password file, and its files key, owned by its Deployment so that
    /// deleting the Deployment collects it.
    /// </summary>
    public static V1Secret PasswordSecret(SessionCommandPayload session, V1Deployment owner, byte[] password, byte[]? viewOnlyPassword, byte[] filesKey) => new()
    {
        ApiVersion = "v1",
        Kind = "Secret",
        Type = "Opaque",
        Metadata = new V1ObjectMeta
        {
            Name = SecretName(session.SessionId),
            Labels = Labels(session),
            OwnerReferences = [new V1OwnerReference { ApiVersion = "apps/v1", Kind = "Deployment", Name = owner.Metadata.Name, Uid = owner.Metadata.Uid, Controller = true }],
        },
        Data = new Dictionary<string, byte[]> { [PasswordFileKey] = VncPasswordFile.Write(password, viewOnlyPassword), [FilesKeyKey] = filesKey },
    };

    /// <summary>
    /// The password the tunnel answers the session's VNC challenge with. VncEndpoint carries it as text, which RfbBridge
    /// turns back into bytes as Latin-1, one byte per character: Latin-1 maps every byte value to one character and back,
    /// so all 8 bytes arrive unchanged.
    /// </summary>
    public static string TunnelPassword(V1Secret secret)
    {
        if (secret.Data?.TryGetValue(PasswordFileKey, out var file) is true)
        {
            return Encoding.Latin1.GetString(VncPasswordFile.Read(file));
        }

        return secret.Data?.TryGetValue(PasswordKey, out var text) is true
            ? Encoding.UTF8.GetString(text)
            : throw new InvalidOperationException($"Secret {secret.Metadata?.Name} has neither '{PasswordFileKey}' nor '{PasswordKey}'");
    }

    /// <summary>The key the agent proves to the session's file service; null in the Secret of a session started before files worked on Kubernetes.</summary>
    public static byte[]? FilesKey(V1Secret secret) =>
        secret.Data?.TryGetValue(FilesKeyKey, out var key) is true && key.Length == Contracts.Tunnel.FileStreams.FilesKeyBytes ? key : null;

    /// <summary>The view-only password (see <see cref="TunnelPassword"/>); null for a Secret written before sharing existed.</summary>
    public static string? TunnelViewOnlyPassword(V1Secret secret) =>
        secret.Data?.TryGetValue(PasswordFileKey, out var file) is true && VncPasswordFile.ReadViewOnly(file) is { } viewOnly
            ? Encoding.Latin1.GetString(viewOnly)
            : null;

    /// <summary>The user's home volume: no owner, so no session's deletion ever collects it.</summary>
    public static V1PersistentVolumeClaim HomeClaim(SessionCommandPayload session, AgentSettings settings) => new()
    {
        ApiVersion = "v1",
        Kind = "PersistentVolumeClaim",
        Metadata = new V1ObjectMeta
        {
            Name = HomeClaimName(session.Username),
            Labels = new Dictionary<string, string> { [ManagedByLabel] = ManagedByValue, [UserLabel] = SafeUsername(session.Username) },
        },
        Spec = new V1PersistentVolumeClaimSpec
        {
            AccessModes = ["ReadWriteOnce"],
            StorageClassName = string.IsNullOrWhiteSpace(settings.SessionStorageClass) ? null : settings.SessionStorageClass.Trim(),
            Resources = new V1VolumeResourceRequirements
            {
                Requests = new Dictionary<string, ResourceQuantity> { ["storage"] = new(string.IsNullOrWhiteSpace(settings.SessionHomeSize) ? "5Gi" : settings.SessionHomeSize.Trim()) },
            },
        },
    };

    private static Dictionary<string, string> PodAnnotations(SessionTemplate template)
    {
        var annotations = new Dictionary<string, string>
        {
            [TemplateAnnotation] = template.Name,
            [IdleTimeoutAnnotation] = template.IdleTimeoutSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
        if (template.MaxDurationSeconds is { } maxDuration)
        {
            annotations[MaxDurationAnnotation] = maxDuration.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        return annotations;
    }

    private static List<V1LocalObjectReference>? PullSecrets(AgentSettings settings)
    {
        var names = settings.SessionImagePullSecrets.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return names.Length == 0 ? null : names.Select(n => new V1LocalObjectReference { Name = n }).ToList();
    }

    [GeneratedRegex("[^a-z0-9-]+")]
    private static partial Regex NotDnsLabel();
}
