using System.Net.Http.Headers;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Http.Features;
using StreamSpace.Web.Services.Auth;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Transforms;

namespace StreamSpace.Web.Services.Proxy;

/// <summary>
/// Forwards <c>/api/*</c> to the API with YARP, so the browser talks to one origin and needs no CORS. The viewer's
/// <c>/vnc</c> WebSocket does not pass through here: the browser opens it on the API itself (<c>VIEWER_VNC_PORT</c>, or
/// the ingress's <c>/vnc</c> route), since its single-use ticket is its credential and a relay here would cost a hop. The browser never holds the JWT: for a signed-in user the proxy adds <c>Authorization: Bearer</c>
/// from the encrypted auth cookie, and strips the cookie itself, which is the web's and not the API's business.
/// </summary>
public static class ApiProxyExtensions
{
    /// <summary>
    /// Required on every state-changing request through the proxy and on the viewer's ticket endpoint. Since the cookie
    /// authenticates those requests, a page on another site must not be able to send them: it cannot set a custom
    /// header without a CORS preflight, and no CORS is ever granted here. (The cookie is also SameSite=Lax.)
    /// </summary>
    public const string CsrfHeader = "X-StreamSpace-Request";

    private const string ApiRoute = "api";
    private const string Cluster = "api";

    public static IHostApplicationBuilder AddStreamSpaceProxy(this IHostApplicationBuilder builder)
    {
        // YARP forwards with its own handler, not the service-discovery HttpClient, so the address is read the way
        // service discovery reads it: services__api__http__0 from the AppHost or the chart, else the DNS name "api".
        var address = builder.Configuration["services:api:http:0"] ?? builder.Configuration["services:api:https:0"] ?? "http://api";
        RouteConfig[] routes =
        [
            new() { RouteId = ApiRoute, ClusterId = Cluster, Match = new() { Path = "/api/{**rest}" } },
        ];
        ClusterConfig[] clusters =
        [
            new()
            {
                ClusterId = Cluster,
                Destinations = new Dictionary<string, DestinationConfig> { ["api"] = new() { Address = address } },
                // Server-sent events stay open for as long as the user watches.
                HttpRequest = new() { ActivityTimeout = Timeout.InfiniteTimeSpan },
            },
        ];

        builder.Services.AddReverseProxy()
            .LoadFromMemory(routes, clusters)
            .AddTransforms(context =>
            {
                context.AddRequestHeaderRemove("Cookie");
                // The web's /api is the signed-in browser's, authenticated by its cookie alone: a bearer the client sends
                // (a personal API token, a JWT) is dropped, so it gets nothing here; scripts call the API itself.
                context.AddRequestHeaderRemove("Authorization");
                if (context.Route.RouteId == ApiRoute)
                {
                    context.AddRequestTransform(AddBearerAsync);
                }
            });
        return builder;
    }

    public static WebApplication MapStreamSpaceProxy(this WebApplication app)
    {
        app.MapReverseProxy(proxy => proxy.Use(async (context, next) =>
        {
            // The API's own status and problem details go back as they are, not as the web's error pages.
            if (context.Features.Get<IStatusCodePagesFeature>() is { } statusCodePages)
            {
                statusCodePages.Enabled = false;
            }

            if (!IsSafe(context.Request.Method) && !context.Request.Headers.ContainsKey(CsrfHeader))
            {
                await MissingCsrfHeader().ExecuteAsync(context);
                return;
            }

            if (IsUpload(context.Request) && context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
            {
                // The API enforces UPLOAD_MAX_BYTES on uploads (a 413 the browser shows); Kestrel's 30 MB default here would cut them first.
                limit.MaxRequestBodySize = null;
            }

            await next();
        }));
        return app;
    }

    /// <summary>The 400 for a state-changing request without <see cref="CsrfHeader"/>.</summary>
    public static IResult MissingCsrfHeader() => TypedResults.Problem(
        statusCode: StatusCodes.Status400BadRequest,
        title: "Missing request header",
        detail: $"State-changing requests must carry the {CsrfHeader} header.");

    /// <summary>An upload of a file into a session (PUT /api/v1/sessions/{id}/files/uploads/{name}), streamed through as it arrives.</summary>
    private static bool IsUpload(HttpRequest request) =>
        HttpMethods.IsPut(request.Method) && request.Path.StartsWithSegments("/api/v1/sessions") && request.Path.Value!.Contains("/files/uploads/", StringComparison.Ordinal);

    public static bool IsSafe(string method) => HttpMethods.IsGet(method) || HttpMethods.IsHead(method) || HttpMethods.IsOptions(method);

    private static async ValueTask AddBearerAsync(RequestTransformContext transform)
    {
        var token = await transform.HttpContext.GetTokenAsync(CookieAuthenticationDefaults.AuthenticationScheme, AuthCookie.AccessTokenName);
        if (token is not null)
        {
            transform.ProxyRequest.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }
    }
}
