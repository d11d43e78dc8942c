namespace StreamSpace.Bench.Agents;

/// <summary>"--name value" pairs.</summary>
public sealed class Arguments(IReadOnlyDictionary<string, string> values)
{
    public static Arguments Parse(string[] args) =>
        new(Enumerable.Range(0, args.Length / 2).ToDictionary(i => args[2 * i], i => args[2 * i + 1]));

    public string Required(string name) => values.TryGetValue(name, out var value) ? value : throw new ArgumentException($"{name} is required");

    public string? Optional(string name) => values.GetValueOrDefault(name);
}
