using System.Text.Json;
using System.Text.Json.Serialization;

namespace StreamSpace.Contracts.Api;

/// <summary>The HTTP API's JSON: snake_case names (<c>expires_at</c>, <c>user_id</c>), for its clients to read and write it.</summary>
public static class ApiJson
{
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
    };

    /// <summary>For PATCH bodies, where a missing field means "leave it" and null would mean "clear it".</summary>
    public static readonly JsonSerializerOptions OmitNulls = new(Options)
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };
}
