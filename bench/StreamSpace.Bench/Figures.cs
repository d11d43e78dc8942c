using System.Globalization;

namespace StreamSpace.Bench;

/// <summary>How every section turns repeated samples into the report's figures: medians with [min–max], percentiles.</summary>
public static class Figures
{
    public static double Median(IReadOnlyCollection<double> values) => values.Order().ElementAt(values.Count / 2);

    /// <summary>"median [min–max]", or the single value when there was one repetition.</summary>
    public static string Figure(IReadOnlyCollection<double> values, string format)
    {
        var sorted = values.Order().ToList();
        return sorted.Count == 1
            ? sorted[0].ToString(format, CultureInfo.InvariantCulture)
            : $"{sorted[sorted.Count / 2].ToString(format, CultureInfo.InvariantCulture)} [{sorted[0].ToString(format, CultureInfo.InvariantCulture)}–{sorted[^1].ToString(format, CultureInfo.InvariantCulture)}]";
    }

    /// <summary>Nearest-rank percentile.</summary>
    public static double Percentile(IReadOnlyCollection<double> values, double percentile)
    {
        var sorted = values.Order().ToList();
        return sorted[Math.Clamp((int)Math.Ceiling(percentile / 100.0 * sorted.Count) - 1, 0, sorted.Count - 1)];
    }
}
