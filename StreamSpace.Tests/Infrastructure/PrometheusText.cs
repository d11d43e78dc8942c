using System.Globalization;
using System.Text.RegularExpressions;

namespace StreamSpace.Tests.Infrastructure;

/// <summary>One sample of a scrape: <c>name{labels} value</c>.</summary>
public sealed record PrometheusSample(string Name, IReadOnlyDictionary<string, string> Labels, double Value)
{
    public bool Has(string label, string value) => Labels.TryGetValue(label, out var actual) && actual == value;
}

/// <summary>
/// A scrape in Prometheus' text exposition format (version 0.0.4), parsed strictly: every line is a comment
/// (<c># HELP</c>, <c># TYPE</c>, <c># UNIT</c>, <c># EOF</c>) or a sample of a family its <c># TYPE</c> declared, with valid
/// names, quoted label values and a number. A line that is neither fails the parse, as it would fail Prometheus' scrape.
/// </summary>
public sealed partial class PrometheusText
{
    private PrometheusText(IReadOnlyDictionary<string, string> types, IReadOnlyList<PrometheusSample> samples)
    {
        Types = types;
        Samples = samples;
    }

    /// <summary>Each family's declared type (counter, gauge, histogram, summary, untyped).</summary>
    public IReadOnlyDictionary<string, string> Types { get; }

    public IReadOnlyList<PrometheusSample> Samples { get; }

    /// <summary>The samples of one series name (a histogram's <c>_count</c>, a counter's <c>_total</c>, …) whose labels include these.</summary>
    public IEnumerable<PrometheusSample> Series(string name, params (string Label, string Value)[] labels) =>
        Samples.Where(s => s.Name == name && labels.All(l => s.Has(l.Label, l.Value)));

    /// <summary>The sum over the matching series; 0 when there are none (an instrument that never recorded is absent).</summary>
    public double Sum(string name, params (string Label, string Value)[] labels) => Series(name, labels).Sum(s => s.Value);

    public static PrometheusText Parse(string text)
    {
        var types = new Dictionary<string, string>(StringComparer.Ordinal);
        var samples = new List<PrometheusSample>();
        var number = 0;
        foreach (var line in text.Split('\n'))
        {
            number++;
            if (line.Length == 0 || line == "# EOF")
            {
                continue;
            }

            if (line.StartsWith('#'))
            {
                var comment = Comment().Match(line);
                Check(comment.Success, number, line, "a comment must be # HELP, # TYPE or # UNIT with a metric name");
                if (comment.Groups["kind"].Value == "TYPE")
                {
                    var type = comment.Groups["rest"].Value;
                    Check(type is "counter" or "gauge" or "histogram" or "summary" or "untyped", number, line, "an unknown type");
                    Check(types.TryAdd(comment.Groups["name"].Value, type), number, line, "a family declared twice");
                }

                continue;
            }

            var sample = Sample().Match(line);
            Check(sample.Success, number, line, "not a sample line");
            var name = sample.Groups["name"].Value;
            Check(FamilyOf(name, types) is not null, number, line, "a sample of no declared family");
            var labels = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (Match label in Label().Matches(sample.Groups["labels"].Value))
            {
                Check(labels.TryAdd(label.Groups["name"].Value, Unescape(label.Groups["value"].Value)), number, line, "a label given twice");
            }

            var value = sample.Groups["value"].Value switch
            {
                "+Inf" => double.PositiveInfinity,
                "-Inf" => double.NegativeInfinity,
                "NaN" => double.NaN,
                var v when double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var parsed) => parsed,
                _ => throw new FormatException($"line {number}: '{line}': the value is not a number"),
            };
            samples.Add(new PrometheusSample(name, labels, value));
        }

        return new PrometheusText(types, samples);
    }

    /// <summary>The declared family a sample belongs to: itself, or a histogram's or counter's series suffix removed.</summary>
    private static string? FamilyOf(string name, IReadOnlyDictionary<string, string> types)
    {
        if (types.ContainsKey(name))
        {
            return name;
        }

        foreach (var suffix in new[] { "_bucket", "_sum", "_count", "_total", "_created" })
        {
            if (name.EndsWith(suffix, StringComparison.Ordinal) && types.ContainsKey(name[..^suffix.Length]))
            {
                return name[..^suffix.Length];
            }
        }

        return null;
    }

    private static string Unescape(string value) => value.Replace("\\\"", "\"", StringComparison.Ordinal)
        .Replace("\\n", "\n", StringComparison.Ordinal).Replace("\\\\", "\\", StringComparison.Ordinal);

    private static void Check(bool condition, int number, string line, string problem)
    {
        if (!condition)
        {
            throw new FormatException($"line {number}: '{line}': {problem}");
        }
    }

    [GeneratedRegex(@"^# (?<kind>HELP|TYPE|UNIT) (?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?: (?<rest>.*))?$")]
    private static partial Regex Comment();

    [GeneratedRegex(@"^(?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?<labels>(?:[a-zA-Z_][a-zA-Z0-9_]*=""(?:[^""\\]|\\.)*"",?)*)\})? (?<value>\S+)(?: -?\d+)?$")]
    private static partial Regex Sample();

    [GeneratedRegex(@"(?<name>[a-zA-Z_][a-zA-Z0-9_]*)=""(?<value>(?:[^""\\]|\\.)*)""")]
    private static partial Regex Label();
}
