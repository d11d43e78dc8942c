using System.Text.Json;
using System.Text.Json.Serialization;

namespace StreamSpace.Contracts.Api;

public sealed record TemplateResources(string? Cpu, string? Memory);

/// <summary>
/// One env entry: a value (<c>"FOO": "bar"</c>), or on Kubernetes a key of a Secret in the session namespace
/// (<c>"FOO": {"secret_ref": {"name": "db", "key": "password"}}</c>), whose value never passes through StreamSpace.
/// Shown to admins only; other users get the names, each with null.
/// </summary>
[JsonConverter(typeof(TemplateEnvValueConverter))]
public sealed record TemplateEnvValue(string? Value, SecretKeyRef? SecretRef);

/// <summary>Reads and writes <see cref="TemplateEnvValue"/> as a string or a <c>{"secret_ref": …}</c> object, in the API and in the <c>env</c> column alike.</summary>
public sealed class TemplateEnvValueConverter : JsonConverter<TemplateEnvValue>
{
    private const string Expected = "an env entry is a string or {\"secret_ref\": {\"name\": \"<secret>\", \"key\": \"<key>\"}}";

    public override TemplateEnvValue Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType == JsonTokenType.String)
        {
            return new TemplateEnvValue(reader.GetString(), null);
        }

        var element = JsonElement.ParseValue(ref reader);
        if (element.ValueKind == JsonValueKind.Object && element.TryGetProperty("secret_ref", out var reference) && reference.ValueKind == JsonValueKind.Object
            && reference.TryGetProperty("name", out var name) && name.ValueKind == JsonValueKind.String
            && reference.TryGetProperty("key", out var key) && key.ValueKind == JsonValueKind.String)
        {
            return new TemplateEnvValue(null, new SecretKeyRef(name.GetString()!, key.GetString()!));
        }

        throw new JsonException(Expected);
    }

    public override void Write(Utf8JsonWriter writer, TemplateEnvValue value, JsonSerializerOptions options)
    {
        if (value.SecretRef is { } reference)
        {
            writer.WriteStartObject();
            writer.WriteStartObject("secret_ref");
            writer.WriteString("name", reference.Name);
            writer.WriteString("key", reference.Key);
            writer.WriteEndObject();
            writer.WriteEndObject();
            return;
        }

        writer.WriteStringValue(value.Value);
    }
}

/// <summary>
/// A template as the API shows and takes it. Durations are written like settings: 30m, 8h, 00:30:00.
/// <see cref="ClipboardToBrowser"/> and <see cref="ClipboardToSession"/> (default true) let text copied in the session
/// reach the viewer's browser, and text from the browser reach the session; off, the session's VNC server itself drops
/// that direction (Xvnc's SendCutText and AcceptCutText), whatever the browser does. <see cref="Sharing"/> (default true)
/// lets owners share its sessions; off, no share can be created and no new viewer joins an existing one.
/// <see cref="Audio"/> (default true) gives its sessions a sound server whose output viewers hear; off, the session has
/// none and no audio stream opens. <see cref="Record"/> (default false) records every session of it while it runs.
/// </summary>
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
    Dictionary<string, TemplateEnvValue?>? Env,
    bool? PersistentHome,
    string? IdleTimeout,
    string? MaxDuration,
    bool? ClipboardToBrowser = null,
    bool? ClipboardToSession = null,
    bool? Sharing = null,
    bool? Audio = null,
    bool? Record = null);
