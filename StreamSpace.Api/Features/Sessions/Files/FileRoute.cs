using StreamSpace.Contracts.Tunnel;

namespace StreamSpace.Api.Features.Sessions.Files;

/// <summary>The file name a route names, and the 400 for a name that is not one file in the folder.</summary>
public static class FileRoute
{
    /// <summary>
    /// Kestrel decodes every escape of the path but %2F (which would make a new segment), so that one is decoded here:
    /// a name holding "/" reaches the name check and is refused with its reason, not routed elsewhere.
    /// </summary>
    public static string Name(string? routeValue) => (routeValue ?? "").Replace("%2F", "/", StringComparison.OrdinalIgnoreCase);

    public static IResult? Refusal(string name) => FileStreams.NameProblem(name) is { } problem
        ? TypedResults.Problem(title: "Invalid file name.", detail: problem, statusCode: StatusCodes.Status400BadRequest)
        : null;
}
