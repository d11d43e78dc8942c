using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using NSwag;
using NSwag.Generation;

namespace StreamSpace.Api.Features.Tokens;

public static class TokensExtensions
{
    /// <summary>
    /// Personal API tokens: their store, and their authentication scheme beside the JWT bearer's. The default scheme
    /// becomes a selector that sends <c>Bearer ssp_…</c> to tokens and every other bearer to JWT validation, so every
    /// endpoint accepts both without naming a scheme. Call after AddStreamSpaceAuth.
    /// </summary>
    public static IHostApplicationBuilder AddStreamSpaceTokens(this IHostApplicationBuilder builder)
    {
        builder.Services.AddSingleton<ApiTokenStore>();
        builder.Services.AddSingleton<IApiTokens>(sp => sp.GetRequiredService<ApiTokenStore>());
        builder.Services.AddAuthentication(ApiTokenAuthenticationHandler.SelectorSchemeName)
            .AddScheme<AuthenticationSchemeOptions, ApiTokenAuthenticationHandler>(ApiTokenAuthenticationHandler.SchemeName, _ => { })
            .AddPolicyScheme(ApiTokenAuthenticationHandler.SelectorSchemeName, "JWT or API token", policy => policy.ForwardDefaultSelector = context =>
                ApiTokenSecret.LooksLikeToken(ApiTokenAuthenticationHandler.BearerToken(context.Request))
                    ? ApiTokenAuthenticationHandler.SchemeName
                    : JwtBearerDefaults.AuthenticationScheme);
        return builder;
    }

    /// <summary>Enforces token scopes on every endpoint; after UseStreamSpaceAuth, so it sees the authorized principal.</summary>
    public static WebApplication UseStreamSpaceTokens(this WebApplication app)
    {
        app.UseMiddleware<ApiTokenScopeGate>();
        return app;
    }

    /// <summary>Describes <c>Authorization: Bearer ssp_…</c> in the OpenAPI document, beside the JWT bearer scheme.</summary>
    public static void DescribeApiTokens(this OpenApiDocumentGeneratorSettings document) =>
        document.AddSecurity("ApiToken", [], new OpenApiSecurityScheme
        {
            Type = OpenApiSecuritySchemeType.Http,
            Scheme = "bearer",
            BearerFormat = "ssp_<43 characters of base64url>",
            Description = "A personal API token (POST /api/v1/users/me/tokens), sent as 'Authorization: Bearer ssp_…'. Scopes: "
                + "read (GET and HEAD), sessions (also launch, stop, hibernate, wake and connect to sessions), admin (admin endpoints; "
                + "an admin's tokens only). Tokens cannot manage tokens, change the password or open the web UI.",
        });
}
