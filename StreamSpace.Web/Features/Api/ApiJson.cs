using System.Text.Json;

namespace StreamSpace.Web.Features.Api;

public static class ApiJson
{
    /// <summary>The API writes and reads snake_case JSON (<c>expires_at</c>, <c>user_id</c>).</summary>
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
    };

    /// <summary>For PATCH bodies, where a missing field means "leave it" and null would mean "clear it".</summary>
    public static readonly JsonSerializerOptions OmitNulls = new(Options)
    {
        DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull,
    };
}
