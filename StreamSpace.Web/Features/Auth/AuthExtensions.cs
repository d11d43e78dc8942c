using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;

namespace StreamSpace.Web.Features.Auth;

public static class AuthExtensions
{
    public const string LoginPath = "/login";
    public const string LogoutPath = "/logout";
    public const string AccessDeniedPath = "/access-denied";

    public static IHostApplicationBuilder AddStreamSpaceAuth(this IHostApplicationBuilder builder)
    {
        builder.Services.AddAuthentication(CookieAuthenticationDefaults.AuthenticationScheme)
            .AddCookie(cookie =>
            {
                cookie.Cookie.Name = "streamspace_auth";
                cookie.Cookie.HttpOnly = true;
                cookie.Cookie.SameSite = SameSiteMode.Lax;
                // Secure behind TLS, still usable over plain http in development. Behind a TLS-terminating ingress,
                // set ASPNETCORE_FORWARDEDHEADERS_ENABLED=true so the request counts as https.
                cookie.Cookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
                // The cookie's lifetime is the JWT's; ApiSignIn sets it per login.
                cookie.SlidingExpiration = false;
                cookie.LoginPath = LoginPath;
                cookie.AccessDeniedPath = AccessDeniedPath;
                cookie.ReturnUrlParameter = "returnUrl";
            });
        builder.Services.AddAuthorization();
        builder.Services.AddCascadingAuthenticationState();
        builder.Services.AddSingleton<ApiSignIn>();
        return builder;
    }

    public static WebApplication UseStreamSpaceAuth(this WebApplication app)
    {
        app.UseAuthentication();
        app.UseAuthorization();
        return app;
    }

    public static WebApplication MapStreamSpaceAuth(this WebApplication app)
    {
        app.MapPost(LogoutPath, LogOutAsync);
        return app;
    }

    private static async Task<IResult> LogOutAsync(HttpContext httpContext, IAntiforgery antiforgery)
    {
        // A form on another site must not be able to log the user out.
        if (!await antiforgery.IsRequestValidAsync(httpContext))
        {
            return TypedResults.Text("The page was open too long; reload it and log out again.", statusCode: StatusCodes.Status400BadRequest);
        }

        await httpContext.SignOutAsync(CookieAuthenticationDefaults.AuthenticationScheme);
        return TypedResults.LocalRedirect(LoginPath);
    }
}
