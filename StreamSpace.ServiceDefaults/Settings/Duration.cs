using System.Globalization;
using System.Text.RegularExpressions;

namespace StreamSpace.Settings;

/// <summary>Parses durations written as <c>30s</c>, <c>1m</c>, <c>1h30m</c>, <c>250ms</c> or <c>00:00:30</c>.</summary>
public static partial class Duration
{
    public const string AcceptedForms = "a duration such as 30s, 1m, 1h30m, 250ms or 00:00:30";

    [GeneratedRegex(@"^(?:(\d+(?:\.\d+)?)(ms|s|m|h|d))+$", RegexOptions.CultureInvariant)]
    private static partial Regex UnitsPattern();

    [GeneratedRegex(@"(\d+(?:\.\d+)?)(ms|s|m|h|d)", RegexOptions.CultureInvariant)]
    private static partial Regex UnitPart();

    public static bool TryParse(string? text, out TimeSpan value)
    {
        value = default;
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }

        text = text.Trim();
        if (text.Contains(':', StringComparison.Ordinal))
        {
            return TimeSpan.TryParseExact(text, "c", CultureInfo.InvariantCulture, out value);
        }

        if (!UnitsPattern().IsMatch(text))
        {
            return false;
        }

        foreach (Match part in UnitPart().Matches(text))
        {
            var amount = double.Parse(part.Groups[1].Value, CultureInfo.InvariantCulture);
            value += part.Groups[2].Value switch
            {
                "ms" => TimeSpan.FromMilliseconds(amount),
                "s" => TimeSpan.FromSeconds(amount),
                "m" => TimeSpan.FromMinutes(amount),
                "h" => TimeSpan.FromHours(amount),
                _ => TimeSpan.FromDays(amount),
            };
        }

        return true;
    }

    /// <summary>Formats the way the settings accept it back, e.g. <c>30s</c> or <c>1m30s</c>.</summary>
    public static string Format(TimeSpan value)
    {
        if (value.Ticks % TimeSpan.TicksPerSecond != 0)
        {
            return $"{value.TotalMilliseconds.ToString(CultureInfo.InvariantCulture)}ms";
        }

        var text = "";
        if (value.Days > 0) text += $"{value.Days}d";
        if (value.Hours > 0) text += $"{value.Hours}h";
        if (value.Minutes > 0) text += $"{value.Minutes}m";
        if (value.Seconds > 0 || text.Length == 0) text += $"{value.Seconds}s";
        return text;
    }
}
