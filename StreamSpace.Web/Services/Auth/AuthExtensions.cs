using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using StreamSpace.Web.Services.Api;

namespace StreamSpace.Web.Services.Auth;

public static class AuthExtensions
{
    public const string LoginPath = "/login";
    public const string LogoutPath = "/logout";
    public const string AccessDeniedPath = "/access-denied";

    public static IHostApplicationBuilder AddStreamSpaceAuth(this IHostApplicationBuilder builder, WebSettings settings)
    {
        builder.Services.AddAuthentication(CookieAuthenticationDefaults.AuthenticationScheme)
            .AddCookie(cookie =>
            {
                cookie.Cookie.Name = "streamspace_auth";
                cookie.Cookie.HttpOnly = true;
                cookie.Cookie.SameSite = SameSiteMode.Lax;
                // Always Secure when users reach the site over https (PUBLIC_URL), even behind a proxy that terminates TLS
                // and forwards plain http; otherwise Secure whenever the request is, so plain http works in development.
                cookie.Cookie.SecurePolicy = settings.SecureCookies ? CookieSecurePolicy.Always : CookieSecurePolicy.SameAsRequest;
                // The cookie's lifetime is the JWT's; ApiSignIn sets it per login.
                cookie.SlidingExpiration = false;
                cookie.LoginPath = LoginPath;
                cookie.AccessDeniedPath = AccessDeniedPath;
                cookie.ReturnUrlParameter = "returnUrl";
            })
            .AddStreamSpaceOidc(settings);
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
        if (app.Services.GetRequiredService<WebSettings>().OidcEnabled)
        {
            app.MapGet(OidcSignIn.StartPath, (string? returnUrl) => OidcSignIn.Start(returnUrl));
        }

        return app;
    }

    private static async Task<IResult> LogOutAsync(HttpContext httpContext, IAntiforgery antiforgery, ApiSession api, WebSettings settings)
    {
        // A form on another site must not be able to log the user out.
        if (!await antiforgery.IsRequestValidAsync(httpContext))
        {
            return TypedResults.Text("The page was open too long; reload it and log out again.", statusCode: StatusCodes.Status400BadRequest);
        }

        // End the token on the API first, so a copy of the cookie (or of the token in it) stops working too. Signed out
        // here either way: a token the API already refuses (401) or an API that does not answer must not keep the
        // user signed in on this browser.
        await api.PostAsync<System.Text.Json.JsonElement>(ApiRoutes.Logout, body: null, httpContext.RequestAborted);
        // Read before the cookie goes: with OIDC_END_SESSION, the provider is told to end its sign-in too.
        var endSession = await OidcSignIn.EndSessionAsync(httpContext, settings);
        await httpContext.SignOutAsync(CookieAuthenticationDefaults.AuthenticationScheme);
        return endSession ?? TypedResults.LocalRedirect(LoginPath);
    }
}
