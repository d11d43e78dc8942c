namespace StreamSpace.Settings;

/// <summary>A required setting is missing or invalid. Its message is the one line printed before the process exits.</summary>
public sealed class InvalidSettingException(string setting, string problem)
    : Exception($"{setting} {problem}")
{
    public string Setting { get; } = setting;
}
