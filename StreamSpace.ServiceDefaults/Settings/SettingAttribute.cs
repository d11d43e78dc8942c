namespace StreamSpace.Settings;

/// <summary>
/// Marks a property of a settings class as read from one environment variable.
/// The name is the contract with the AppHost and the Helm chart, which tests derive from these attributes.
/// </summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class SettingAttribute(string name) : Attribute
{
    /// <summary>The environment variable, e.g. <c>JWT_SECRET</c> or <c>ConnectionStrings__streamspace</c>.</summary>
    public string Name { get; } = name;

    public bool Required { get; init; }

    /// <summary>Secret values are never echoed in errors or logs.</summary>
    public bool Secret { get; init; }

    /// <summary>What the setting is for, or the forms it accepts; quoted in the error when it is missing or invalid.</summary>
    public string? Help { get; init; }

    /// <summary>The key in <c>IConfiguration</c>: environment variables map <c>__</c> to <c>:</c>.</summary>
    public string ConfigurationKey => Name.Replace("__", ":", StringComparison.Ordinal);
}
