using System.Globalization;
using System.Reflection;
using Microsoft.Extensions.Configuration;

namespace StreamSpace.Settings;

/// <summary>A settings class that checks rules across its values after binding.</summary>
public interface IValidatedSettings
{
    /// <summary>Throws <see cref="InvalidSettingException"/> naming the first setting that breaks a rule.</summary>
    void Validate();
}

/// <summary>
/// Binds a settings class from configuration through its <see cref="SettingAttribute"/>s.
/// Every property keeps its initializer as the default, so a setting is never left unset: an interval left out of the
/// configuration is its default, never zero, and nothing downstream has to guard against a missing value.
/// </summary>
public static class SettingsBinder
{
    public static T Bind<T>(IConfiguration configuration) where T : new()
    {
        var settings = new T();
        foreach (var (property, setting) in SettingsOf(typeof(T)))
        {
            var raw = configuration[setting.ConfigurationKey];
            if (string.IsNullOrWhiteSpace(raw))
            {
                if (setting.Required)
                {
                    throw new InvalidSettingException(setting.Name, $"is required but not set{Hint(setting)}.");
                }

                continue;
            }

            property.SetValue(settings, Parse(property.PropertyType, raw.Trim(), setting));
        }

        if (settings is IValidatedSettings validated)
        {
            validated.Validate();
        }

        return settings;
    }

    /// <summary>Every setting a class reads: the list the Helm chart and AppHost are checked against.</summary>
    public static IReadOnlyList<(PropertyInfo Property, SettingAttribute Setting)> SettingsOf(Type type) =>
        [.. type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Select(p => (Property: p, Setting: p.GetCustomAttribute<SettingAttribute>()))
            .Where(p => p.Setting is not null)
            .Select(p => (p.Property, p.Setting!))];

    private static object Parse(Type type, string raw, SettingAttribute setting)
    {
        var target = Nullable.GetUnderlyingType(type) ?? type;
        object? value = target switch
        {
            _ when target == typeof(string) => raw,
            _ when target == typeof(int) => int.TryParse(raw, NumberStyles.Integer, CultureInfo.InvariantCulture, out var i) ? i : null,
            _ when target == typeof(long) => long.TryParse(raw, NumberStyles.Integer, CultureInfo.InvariantCulture, out var l) ? l : null,
            _ when target == typeof(bool) => bool.TryParse(raw, out var b) ? b : null,
            _ when target == typeof(TimeSpan) => Duration.TryParse(raw, out var d) ? d : null,
            _ when target == typeof(Uri) => Uri.TryCreate(raw, UriKind.Absolute, out var u) ? u : null,
            _ when target.IsEnum => Enum.TryParse(target, raw, ignoreCase: true, out var e) && Enum.IsDefined(target, e!) ? e : null,
            _ => throw new NotSupportedException($"Settings of type {target.Name} are not supported."),
        };

        if (value is null)
        {
            var shown = setting.Secret ? "" : $" '{raw}'";
            throw new InvalidSettingException(setting.Name, $"has an invalid value{shown}: expected {Expected(target)}{Hint(setting)}.");
        }

        return value;
    }

    private static string Expected(Type type) => type switch
    {
        _ when type == typeof(int) || type == typeof(long) => "a whole number",
        _ when type == typeof(bool) => "true or false",
        _ when type == typeof(TimeSpan) => Duration.AcceptedForms,
        _ when type == typeof(Uri) => "an absolute URL",
        _ when type.IsEnum => "one of " + string.Join(", ", Enum.GetNames(type).Select(n => n.ToLowerInvariant())),
        _ => "text",
    };

    private static string Hint(SettingAttribute setting) => setting.Help is null ? "" : $" ({setting.Help})";
}
