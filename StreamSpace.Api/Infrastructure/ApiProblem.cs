namespace StreamSpace.Api.Infrastructure;

/// <summary>RFC 9457 problem details for the answers FastEndpoints has no shortcut for.</summary>
public static class ApiProblem
{
    public static IResult NotFound(string detail) =>
        TypedResults.Problem(title: "Not found.", detail: detail, statusCode: StatusCodes.Status404NotFound);

    public static IResult Conflict(string detail) =>
        TypedResults.Problem(title: "Conflict.", detail: detail, statusCode: StatusCodes.Status409Conflict);

    public static IResult Forbidden(string title, string? detail = null) =>
        TypedResults.Problem(title: title, detail: detail, statusCode: StatusCodes.Status403Forbidden);

    public static IResult Unauthorized(string title) =>
        TypedResults.Problem(title: title, statusCode: StatusCodes.Status401Unauthorized);

    public static IResult BadRequest(string detail) =>
        TypedResults.Problem(title: "Bad request.", detail: detail, statusCode: StatusCodes.Status400BadRequest);

    public static IResult Gone(string title, string detail) =>
        TypedResults.Problem(title: title, detail: detail, statusCode: StatusCodes.Status410Gone);

    public static IResult Unavailable(string title, string detail) =>
        TypedResults.Problem(title: title, detail: detail, statusCode: StatusCodes.Status503ServiceUnavailable);
}
