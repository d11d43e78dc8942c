using System.Globalization;
using StreamSpace.Contracts;

namespace StreamSpace.Api.Features.Groups;

/// <summary>The most generous of each quota a user's groups set; null where none of them sets it.</summary>
public sealed class UserLimits
{
    public static readonly UserLimits None = new();

    public int? MaxSessions { get; init; }

    /// <summary>The group that gives <see cref="MaxSessions"/>, named when the quota is reached.</summary>
    public string? MaxSessionsGroup { get; init; }

    public int? MaxCpuMillicores { get; init; }

    public int? MaxMemoryMib { get; init; }

    /// <summary>The sessions the user may have at once: the groups' value, or the global default where no group sets one.</summary>
    public int SessionQuota(int globalDefault) => MaxSessions ?? globalDefault;

    /// <summary>Where <see cref="SessionQuota"/> comes from, for the answer that says it is reached.</summary>
    public string SessionQuotaSource(int globalDefault) =>
        MaxSessions is { } max ? $"max_sessions={max} of group '{MaxSessionsGroup}'" : $"SESSION_QUOTA={globalDefault}";

    /// <summary>
    /// The template with its CPU and memory capped: each is the smaller of the template's value and the cap. A template
    /// that asks for nothing gets the cap; a value that is not a quantity this reads is replaced by the cap, so an odd
    /// spelling cannot get around it.
    /// </summary>
    public SessionTemplate Cap(SessionTemplate template) => template with
    {
        Cpu = CapQuantity(template.Cpu, MaxCpuMillicores, ResourceQuantities.CpuMillicores, 1, "m"),
        Memory = CapQuantity(template.Memory, MaxMemoryMib, ResourceQuantities.MemoryBytes, 1024 * 1024, "Mi"),
    };

    private static string? CapQuantity(string? requested, int? cap, Func<string, decimal?> parse, decimal unit, string suffix)
    {
        if (cap is not { } limit)
        {
            return requested;
        }

        var value = string.IsNullOrWhiteSpace(requested) ? null : parse(requested);
        return value is { } v && v <= limit * unit ? requested : limit.ToString(CultureInfo.InvariantCulture) + suffix;
    }
}

/// <summary>Kubernetes resource quantities (<c>500m</c>, <c>1.5</c>, <c>512Mi</c>, <c>1G</c>), read as numbers.</summary>
public static class ResourceQuantities
{
    private static readonly (string Suffix, decimal Factor)[] Suffixes =
    [
        ("Ki", 1L << 10), ("Mi", 1L << 20), ("Gi", 1L << 30), ("Ti", 1L << 40), ("Pi", 1L << 50), ("Ei", 1L << 60),
        ("n", 0.000000001m), ("u", 0.000001m), ("m", 0.001m),
        ("k", 1e3m), ("M", 1e6m), ("G", 1e9m), ("T", 1e12m), ("P", 1e15m), ("E", 1e18m),
    ];

    /// <summary>CPU in millicores; null when the text is not a quantity or is beyond any number (then any cap applies).</summary>
    public static decimal? CpuMillicores(string quantity) => Times(Parse(quantity), 1000);

    public static decimal? MemoryBytes(string quantity) => Parse(quantity);

    private static decimal? Times(decimal? value, decimal factor)
    {
        try
        {
            return value * factor;
        }
        catch (OverflowException)
        {
            return null;
        }
    }

    private static decimal? Parse(string quantity)
    {
        var text = quantity.Trim();
        var (number, factor) = Suffixes.Where(s => text.EndsWith(s.Suffix, StringComparison.Ordinal))
            .Select(s => (text[..^s.Suffix.Length], s.Factor))
            .DefaultIfEmpty((text, 1m))
            .First();
        return decimal.TryParse(number, NumberStyles.AllowDecimalPoint | NumberStyles.AllowExponent, CultureInfo.InvariantCulture, out var value) && value >= 0
            ? Times(value, factor)
            : null;
    }
}
