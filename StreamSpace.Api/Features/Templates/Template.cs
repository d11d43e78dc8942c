using System.Text.Json;
using StreamSpace.Contracts;
using StreamSpace.Settings;

namespace StreamSpace.Api.Features.Templates;

public sealed record TemplateResources(string? Cpu, string? Memory);

/// <summary>A template as the API shows and takes it. Durations are written like settings: 30m, 8h, 00:30:00.</summary>
public sealed record TemplateBody(
    string Name,
    string DisplayName,
    string? Description,
    string? Category,
    string? Icon,
    string? Image,
    string? Command,
    int? VncPort,
    TemplateResources? Resources,
    Dictionary<string, string>? Env,
    bool? PersistentHome,
    string? IdleTimeout,
    string? MaxDuration);

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

    public Dictionary<string, string> EnvVariables => JsonSerializer.Deserialize<Dictionary<string, string>>(Env) ?? [];

    public TemplateBody ToBody() => new(Name, DisplayName, Description, Category, Icon, Image, Command, VncPort,
        new TemplateResources(Cpu, Memory), EnvVariables, PersistentHome, Duration.Format(IdleTimeout),
        MaxDuration is { } max ? Duration.Format(max) : null);

    /// <summary>What an agent needs to run a session of this template.</summary>
    public SessionTemplate ToSessionTemplate() => new(Name, Image, Command, VncPort, Cpu, Memory, EnvVariables, PersistentHome,
        (int)IdleTimeout.TotalSeconds, MaxDuration is { } max ? (int)max.TotalSeconds : null);

    /// <summary>The platforms that can run it: local needs a command, kubernetes an image.</summary>
    public IReadOnlyList<string> Platforms =>
        [.. new[] { Command is { Length: > 0 } ? "local" : null, Image is { Length: > 0 } ? "kubernetes" : null }.OfType<string>()];
}

public sealed class TemplateValidator : FastEndpoints.Validator<TemplateBody>
{
    public TemplateValidator()
    {
        RuleFor(x => x.Name).NotEmpty().Matches("^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
            .WithMessage("name must be a slug: lowercase letters, digits and '-', up to 63 characters.");
        RuleFor(x => x.DisplayName).NotEmpty().MaximumLength(100);
        RuleFor(x => x.VncPort).InclusiveBetween(1, 65535).When(x => x.VncPort is not null);
        RuleFor(x => x.Command).NotEmpty().When(x => string.IsNullOrEmpty(x.Image))
            .WithMessage("A template needs a command (local platform) or an image (kubernetes), or both.");
        RuleFor(x => x.IdleTimeout).Must(BeADuration).When(x => x.IdleTimeout is not null).WithMessage($"idle_timeout must be {Duration.AcceptedForms}.");
        RuleFor(x => x.MaxDuration).Must(BeADuration).When(x => x.MaxDuration is not null).WithMessage($"max_duration must be {Duration.AcceptedForms}.");
        RuleForEach(x => x.Env).Must(e => System.Text.RegularExpressions.Regex.IsMatch(e.Key, "^[A-Za-z_][A-Za-z0-9_]*$"))
            .When(x => x.Env is not null).WithMessage("env names are letters, digits and '_'.");
    }

    private static bool BeADuration(string? text) => Duration.TryParse(text, out var value) && value > TimeSpan.Zero;
}
