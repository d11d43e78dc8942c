namespace StreamSpace.Api.Features.Recordings;

/// <summary>The recording a route names: its id, or null for anything that is not one (answered 404, as an unknown id is).</summary>
public static class RecordingRoute
{
    public static Guid? Id(string? routeValue) => Guid.TryParse(routeValue, out var id) ? id : null;
}
