using StreamSpace.Contracts.Api;
using StreamSpace.Web.Services.Api;
using StreamSpace.Web.Services.Proxy;

namespace StreamSpace.Web.Services.Viewer;

/// <summary>
/// POST /viewer/{id}/ticket (and /shares/{shareId}/ticket for a share's viewer): the viewer's script asks here, with the
/// auth cookie, for a fresh VNC ticket. The server calls the API's connect with the user's token and returns only the
/// single-use ticket and its same-origin URL.
/// </summary>
public static class ViewerEndpoints
{
    public static WebApplication MapViewerEndpoints(this WebApplication app)
    {
        app.MapPost("/viewer/{id}/ticket", (string id, HttpContext context, ApiSession api) =>
            IssueTicketAsync(ApiRoutes.SessionAction(id, "connect"), context, api)).RequireAuthorization();
        // A share's viewer: the same, through the share (which binds the ticket to it and to its mode).
        app.MapPost("/shares/{shareId}/ticket", (string shareId, HttpContext context, ApiSession api) =>
            IssueTicketAsync($"{ApiRoutes.Share(shareId)}/connect", context, api)).RequireAuthorization();
        return app;
    }

    private static async Task<IResult> IssueTicketAsync(string connectPath, HttpContext context, ApiSession api)
    {
        if (!context.Request.Headers.ContainsKey(ApiProxyExtensions.CsrfHeader))
        {
            return ApiProxyExtensions.MissingCsrfHeader();
        }

        var result = await api.PostAsync<ConnectResponse>(connectPath, null, context.RequestAborted);
        if (!result.Succeeded)
        {
            return TypedResults.Problem(statusCode: result.Problem.Status ?? StatusCodes.Status502BadGateway, title: result.Problem.Title, detail: result.Problem.Message);
        }

        return result.Value is { } ticket
            ? TypedResults.Ok(ticket)
            : TypedResults.Problem(statusCode: StatusCodes.Status502BadGateway, detail: ApiError.UnreachableMessage);
    }
}
