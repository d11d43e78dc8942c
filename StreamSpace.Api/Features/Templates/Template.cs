using System.Text.Json;
using StreamSpace.Contracts;
using StreamSpace.Contracts.Api;
using StreamSpace.Contracts.Tunnel;
using StreamSpace.Settings;

namespace StreamSpace.Api.Features.Templates;

/// <summary>A row of <c>templates</c>.</summary>
public sealed class TemplateRow
{
    public string Name { get; init; } = "";
    public string DisplayName { get; init; } = "";
    public string Description { get; init; } = "";
    public string Category { get; init; } = "";
    public string Icon { get; init; } = "";
    public string? Image { get; init; }
    public string? Command { get; init; }
    public int VncPort { get; init; }
    public string? Cpu { get; init; }
    public string? Memory { get; init; }
    public string Env { get; init; } = "{}";
    public bool PersistentHome { get; init; }
    public TimeSpan IdleTimeout { get; init; }
    public TimeSpan? MaxDuration { get; init; }
    public bool ClipboardToBrowser { get; init; } = true;
    public bool ClipboardToSession { get; init; } = true;
    /// <summary>Whether the owner of a session of this template may share it (and new viewers may join its shares).</summary>
    public bool Sharing { get; init; } = true;
    /// <summary>Whether its sessions get a sound server whose output reaches viewers (off: no sound server, no audio stream).</summary>
    public bool Audio { get; init; } = true;
    /// <summary>Whether every session of this template is recorded from the moment it runs.</summary>
    public bool Record { get; init; }

    public Dictionary<string, TemplateEnvValue?> EnvVariables => JsonSerializer.Deserialize<Dictionary<string, TemplateEnvValue?>>(Env) ?? [];

    /// <summary>The template as the API shows it: env values (and which Secrets they come from) for admins only,
    /// since templates may carry credentials; other users see the names.</summary>
    public TemplateBody ToBody(bool withEnvValues) => new(Name, DisplayName, Description, Category, Icon, Image, Command, VncPort,
        new TemplateResources(Cpu, Memory),
        withEnvValues ? EnvVariables : EnvVariables.ToDictionary(e => e.Key, _ => (TemplateEnvValue?)null),
        PersistentHome, Duration.Format(IdleTimeout), MaxDuration is { } max ? Duration.Format(max) : null,
        ClipboardToBrowser, ClipboardToSession, Sharing, Audio, Record);

    /// <summary>What an agent needs to run a session of this template.</summary>
    public SessionTemplate ToSessionTemplate()
    {
        var env = EnvVariables;
        var secretEnv = env.Where(e => e.Value?.SecretRef is not null).ToDictionary(e => e.Key, e => e.Value!.SecretRef!);
        return new(Name, Image, Command, VncPort, Cpu, Memory,
            env.Where(e => e.Value?.Value is not null).ToDictionary(e => e.Key, e => e.Value!.Value!), PersistentHome,
            (int)IdleTimeout.TotalSeconds, MaxDuration is { } max ? (int)max.TotalSeconds : null, secretEnv.Count > 0 ? secretEnv : null,
            ClipboardToBrowser, ClipboardToSession, Audio, Record);
    }

    /// <summary>
    /// The oldest agent protocol that honours everything the template asks for. A closed clipboard direction needs an
    /// agent that hands it to Xvnc (protocol 2); a version-1 agent would ignore it and leave both directions open. A
    /// recorded template needs an agent that records (protocol 4): an older one would run the session unrecorded.
    /// </summary>
    public int MinimumAgentProtocol => Record
        ? AgentProtocol.MediaVersion
        : ClipboardToBrowser && ClipboardToSession ? AgentProtocol.MuxVersion : AgentProtocol.DataVersion;

    /// <summary>The platforms that can run it: local needs a command (and no Secret references, which only Kubernetes
    /// resolves), kubernetes an image.</summary>
    public IReadOnlyList<string> Platforms =>
        [.. new[]
        {
            Command is { Length: > 0 } && !EnvVariables.Values.Any(e => e?.SecretRef is not null) ? "local" : null,
            Image is { Length: > 0 } ? "kubernetes" : null,
        }.OfType<string>()];
}

public sealed class TemplateValidator : FastEndpoints.Validator<TemplateBody>
{
    public TemplateValidator()
    {
        RuleFor(x => x.Name).NotEmpty().Matches("^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
            .WithMessage("name must be a slug: lowercase letters, digits and '-', up to 63 characters.");
        RuleFor(x => x.DisplayName).NotEmpty().MaximumLength(100);
        RuleFor(x => x.VncPort).InclusiveBetween(1, 65535).When(x => x.VncPort is not null);
        RuleFor(x => x.VncPort).NotEqual(FileStreams.ServicePort).When(x => x.VncPort is not null)
            .WithMessage($"vnc_port cannot be {FileStreams.ServicePort}: a Kubernetes session's file service listens there.");
        RuleFor(x => x.Command).NotEmpty().When(x => string.IsNullOrEmpty(x.Image))
            .WithMessage("A template needs a command (local platform) or an image (kubernetes), or both.");
        RuleFor(x => x.IdleTimeout).Must(BeADuration).When(x => x.IdleTimeout is not null).WithMessage($"idle_timeout must be {Duration.AcceptedForms}.");
        RuleFor(x => x.MaxDuration).Must(BeADuration).When(x => x.MaxDuration is not null).WithMessage($"max_duration must be {Duration.AcceptedForms}.");
        RuleForEach(x => x.Env).Must(e => System.Text.RegularExpressions.Regex.IsMatch(e.Key, "^[A-Za-z_][A-Za-z0-9_]*$"))
            .When(x => x.Env is not null).WithMessage("env names are letters, digits and '_'.");
        // The session's own VNC settings (password, port, clipboard directions) come from the agent after the
        // template's env; a template's entry of the same name would replace them in a pod, where the last one wins.
        RuleForEach(x => x.Env).Must(e => !e.Key.StartsWith("VNC_", StringComparison.OrdinalIgnoreCase) && !e.Key.StartsWith("STREAMSPACE_", StringComparison.OrdinalIgnoreCase))
            .When(x => x.Env is not null).WithMessage("env names starting with VNC_ or STREAMSPACE_ are reserved for StreamSpace's own session settings.");
        RuleForEach(x => x.Env).Must(e => e.Value is { Value: not null } or { SecretRef: not null })
            .When(x => x.Env is not null).WithMessage("each env entry needs a value or a secret_ref.");
        RuleForEach(x => x.Env).Must(e => e.Value?.SecretRef is not { } r
                || (System.Text.RegularExpressions.Regex.IsMatch(r.Name, "^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
                    && System.Text.RegularExpressions.Regex.IsMatch(r.Key, "^[-._a-zA-Z0-9]{1,253}$")))
            .When(x => x.Env is not null).WithMessage("secret_ref needs a Secret name (lowercase DNS name) and a key (letters, digits, '-', '_', '.').");
        RuleFor(x => x.Image).NotEmpty().When(x => x.Env?.Values.Any(e => e?.SecretRef is not null) == true)
            .WithMessage("An env entry with secret_ref needs an image: only the kubernetes platform reads Secrets.");
    }

    private static bool BeADuration(string? text) => Duration.TryParse(text, out var value) && value > TimeSpan.Zero;
}
