using System.Collections.Frozen;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace StreamSpace.Contracts;

/// <summary>
/// Where a session is in its life. The API, the agents and the database all speak these names; the converter on the
/// type makes every serializer write them, whatever its naming policy.
/// </summary>
[JsonConverter(typeof(SessionNames.StrictConverter<SessionState>))]
public enum SessionState
{
    [JsonStringEnumMemberName("pending")] Pending,
    [JsonStringEnumMemberName("starting")] Starting,
    [JsonStringEnumMemberName("running")] Running,
    [JsonStringEnumMemberName("hibernating")] Hibernating,
    [JsonStringEnumMemberName("hibernated")] Hibernated,
    [JsonStringEnumMemberName("waking")] Waking,
    [JsonStringEnumMemberName("stopping")] Stopping,
    [JsonStringEnumMemberName("stopped")] Stopped,
    [JsonStringEnumMemberName("failed")] Failed,
}

/// <summary>What a user may ask of a session: <c>POST /api/v1/sessions/{id}/{action}</c>.</summary>
[JsonConverter(typeof(SessionNames.StrictConverter<SessionAction>))]
public enum SessionAction
{
    [JsonStringEnumMemberName("stop")] Stop,
    [JsonStringEnumMemberName("hibernate")] Hibernate,
    [JsonStringEnumMemberName("wake")] Wake,
}

/// <summary>
/// The names of <see cref="SessionState"/> and <see cref="SessionAction"/> as text, for what is not JSON: the database's
/// <c>state</c> column, routes and log lines. Taken from the JSON names, so the two can never disagree.
/// </summary>
public static class SessionNames
{
    /// <summary>Reads and writes only the names: a number, which the default converter would take, is no state or action.</summary>
    public sealed class StrictConverter<T>() : JsonStringEnumConverter<T>(namingPolicy: null, allowIntegerValues: false) where T : struct, Enum;

    private static readonly FrozenDictionary<SessionState, string> StateNames = NamesOf<SessionState>();
    private static readonly FrozenDictionary<string, SessionState> StatesByName = StateNames.ToFrozenDictionary(p => p.Value, p => p.Key);
    private static readonly FrozenDictionary<SessionAction, string> ActionNames = NamesOf<SessionAction>();

    public static string ToName(this SessionState state) => StateNames[state];

    public static string ToName(this SessionAction action) => ActionNames[action];

    /// <summary>The state a name stands for; throws for a name that is none.</summary>
    public static SessionState ParseState(string name) =>
        StatesByName.TryGetValue(name, out var state) ? state : throw new FormatException($"'{name}' is not a session state.");

    private static FrozenDictionary<T, string> NamesOf<T>() where T : struct, Enum =>
        Enum.GetValues<T>().ToFrozenDictionary(value => value, value => JsonSerializer.Deserialize<string>(JsonSerializer.SerializeToUtf8Bytes(value))!);
}
