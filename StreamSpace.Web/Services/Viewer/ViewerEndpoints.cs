using StreamSpace.Contracts.Api;
using StreamSpace.Web.Services.Api;
using StreamSpace.Web.Services.Proxy;

namespace StreamSpace.Web.Services.Viewer;

/// <summary>
/// POST /viewer/{id}/ticket: the viewer's script asks here, with the auth cookie, for a fresh VNC ticket. The server
/// calls the API's connect with the user's token and returns only the single-use ticket and its same-origin URL.
/// </summary>
public static class ViewerEndpoints
{
    public static WebApplication MapViewerEndpoints(this WebApplication app)
    {
        app.MapPost("/viewer/{id}/ticket", IssueTicketAsync).RequireAuthorization();
        return app;
    }

    private static async Task<IResult> IssueTicketAsync(string id, HttpContext context, ApiSession api)
    {
        if (!context.Request.Headers.ContainsKey(ApiProxyExtensions.CsrfHeader))
        {
            return ApiProxyExtensions.MissingCsrfHeader();
        }

        var result = await api.PostAsync<ConnectResponse>(ApiRoutes.SessionAction(id, "connect"), null, context.RequestAborted);
        if (!result.Succeeded)
        {
            return TypedResults.Problem(statusCode: result.Problem.Status ?? StatusCodes.Status502BadGateway, detail: result.Problem.Message);
        }

        return result.Value is { } ticket
            ? TypedResults.Ok(ticket)
            : TypedResults.Problem(statusCode: StatusCodes.Status502BadGateway, detail: ApiError.UnreachableMessage);
    }
}
