using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Authentication.OpenIdConnect;
using Microsoft.IdentityModel.Protocols.OpenIdConnect;

namespace StreamSpace.Web.Services.Auth;

/// <summary>
/// Sign-in through an OpenID provider. This web app runs the authorization code flow with PKCE (ASP.NET's handler
/// checks state and nonce), then hands the provider's ID token to the API, which validates it again on its own
/// (signature, issuer, audience, expiry, a single-use nonce), creates or updates the user and answers with its own
/// token, exactly as for a password. That token, not the provider's, goes into the auth cookie.
/// </summary>
public static class OidcSignIn
{
    public const string Scheme = OpenIdConnectDefaults.AuthenticationScheme;
    public const string StartPath = "/login/oidc";
    public const string CallbackPath = "/signin-oidc";
    public const string SignedOutCallbackPath = "/signout-callback-oidc";

    /// <summary>Why a sign-in through the provider did not end signed in: the login page's <c>?error=</c>.</summary>
    public static class Errors
    {
        public const string Failed = "oidc-failed";
        public const string UsernameTaken = "oidc-username-taken";
        public const string Disabled = "oidc-disabled";
        public const string Refused = "oidc-refused";
        public const string Unreachable = "oidc-unreachable";

        /// <summary>What the login page says for each; null for a code it does not know.</summary>
        public static string? Message(string? code, string provider) => code switch
        {
            Failed => $"Signing in with {provider} did not complete (it was cancelled, took too long, or its answer did not match this browser's request). Try again.",
            UsernameTaken => $"The username your {provider} account has is already taken by a StreamSpace account that does not sign in with {provider}. Ask an administrator to rename or remove that account.",
            Disabled => "Your StreamSpace account is disabled. Ask an administrator to enable it.",
            Refused => $"{provider} signed you in, but StreamSpace could not accept that sign-in. Ask an administrator: the web UI's log says why.",
            Unreachable => Api.ApiError.UnreachableMessage,
            _ => null,
        };
    }

    public static AuthenticationBuilder AddStreamSpaceOidc(this AuthenticationBuilder authentication, WebSettings settings)
    {
        if (!settings.OidcEnabled)
        {
            return authentication;
        }

        return authentication.AddOpenIdConnect(Scheme, oidc =>
        {
            oidc.Authority = settings.OidcIssuer;
            // WebSettings allows plain http only for a provider on this machine.
            oidc.RequireHttpsMetadata = !StreamSpace.Settings.SignInSettings.IsPlainHttp(settings.OidcIssuer);
            oidc.ClientId = settings.OidcClientId;
            oidc.ClientSecret = settings.OidcClientSecret is { Length: > 0 } secret ? secret : null;
            oidc.ResponseType = OpenIdConnectResponseType.Code;
            oidc.UsePkce = true;
            // The code comes back on a plain top-level GET, so the handler's state and nonce cookies can be SameSite=Lax
            // (form_post would need SameSite=None, which browsers accept only over https).
            oidc.ResponseMode = OpenIdConnectResponseMode.Query;
            oidc.Scope.Clear();
            foreach (var scope in settings.OidcScopeList)
            {
                oidc.Scope.Add(scope);
            }

            oidc.SignInScheme = CookieAuthenticationDefaults.AuthenticationScheme;
            oidc.SignOutScheme = CookieAuthenticationDefaults.AuthenticationScheme;
            oidc.CallbackPath = CallbackPath;
            oidc.SignedOutCallbackPath = SignedOutCallbackPath;
            oidc.MapInboundClaims = false;
            // The API reads the user from the ID token. Saved in the ticket only until the exchange, which keeps just the
            // API's token (and the ID token with OIDC_END_SESSION, for the end-session request).
            oidc.GetClaimsFromUserInfoEndpoint = false;
            oidc.SaveTokens = true;
            oidc.DisableTelemetry = true;
            foreach (var cookie in new[] { oidc.CorrelationCookie, oidc.NonceCookie })
            {
                cookie.SameSite = SameSiteMode.Lax;
                cookie.SecurePolicy = settings.SecureCookies ? CookieSecurePolicy.Always : CookieSecurePolicy.SameAsRequest;
            }

            oidc.Events = new OpenIdConnectEvents
            {
                // Not OnTokenValidated: in the code flow the handler checks the nonce after that event, and the API
                // must only see a sign-in the handler has fully validated.
                OnTicketReceived = ExchangeForApiTokenAsync,
                OnRemoteFailure = context =>
                {
                    // A wrong state, a wrong nonce, the user cancelling at the provider: back to the login page, saying so.
                    context.HttpContext.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(OidcSignIn))
                        .LogWarning("Sign-in through the OpenID provider failed: {Reason}", context.Failure?.Message);
                    context.HandleResponse();
                    context.Response.Redirect(LoginPageWith(Errors.Failed));
                    return Task.CompletedTask;
                },
            };
        });
    }

    /// <summary>
    /// The handler has validated the provider's answer (state, the code exchange with PKCE, the ID token and its
    /// nonce). The API now validates the ID token itself and answers with its own token, which becomes the auth cookie.
    /// </summary>
    private static async Task ExchangeForApiTokenAsync(TicketReceivedContext context)
    {
        var services = context.HttpContext.RequestServices;
        var settings = services.GetRequiredService<WebSettings>();
        var properties = context.Properties ?? new AuthenticationProperties();
        var idToken = properties.GetTokenValue(OpenIdConnectParameterNames.IdToken) ?? "";
        var result = await services.GetRequiredService<ApiSignIn>().ExchangeIdTokenAsync(idToken, context.HttpContext.RequestAborted);
        if (!result.Succeeded || result.Value is not { } login)
        {
            var problem = result.Problem;
            services.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(OidcSignIn))
                .LogWarning("The API refused a sign-in through the OpenID provider: {Status} {Title} {Detail}", problem?.Status, problem?.Title, problem?.Detail);
            context.HandleResponse();
            context.Response.Redirect(LoginPageWith(problem switch
            {
                null or { IsUnreachable: true } => Errors.Unreachable,
                { Status: StatusCodes.Status409Conflict } => Errors.UsernameTaken,
                { Status: StatusCodes.Status403Forbidden } => Errors.Disabled,
                _ => Errors.Refused,
            }));
            return;
        }

        // CookieFor replaces the provider's tokens with the API's.
        var (principal, _) = ApiSignIn.CookieFor(login, properties);
        if (settings.OidcEndSession)
        {
            // The provider's end-session request names the sign-in by this ID token (id_token_hint).
            properties.StoreTokens([.. properties.GetTokens(), new AuthenticationToken { Name = OpenIdConnectParameterNames.IdToken, Value = idToken }]);
        }

        // Back to a page of this site only (the handler keeps the RedirectUri it was challenged with).
        context.ReturnUri = properties.RedirectUri = LocalUrl.OrHome(properties.RedirectUri);
        context.Principal = principal;
        context.Properties = properties;
    }

    /// <summary>The challenge that starts a sign-in, returning to <paramref name="returnUrl"/> (a local path) afterwards.</summary>
    public static IResult Start(string? returnUrl) =>
        TypedResults.Challenge(new AuthenticationProperties { RedirectUri = LocalUrl.OrHome(returnUrl) }, [Scheme]);

    /// <summary>
    /// Logging out of a user who signed in through the provider, with OIDC_END_SESSION: the provider's end-session
    /// endpoint, then back to the login page. Null when the cookie has no ID token (a password sign-in).
    /// </summary>
    public static async Task<IResult?> EndSessionAsync(HttpContext httpContext, WebSettings settings)
    {
        if (!settings.OidcEnabled || !settings.OidcEndSession
            || await httpContext.GetTokenAsync(CookieAuthenticationDefaults.AuthenticationScheme, OpenIdConnectParameterNames.IdToken) is null)
        {
            return null;
        }

        return TypedResults.SignOut(new AuthenticationProperties { RedirectUri = AuthExtensions.LoginPath }, [Scheme]);
    }

    private static string LoginPageWith(string error) => $"{AuthExtensions.LoginPath}?error={error}";
}
