namespace StreamSpace.Api.Features.Auth.Oidc;

public static class OidcExtensions
{
    /// <summary>Sign-in through an OpenID provider: its endpoint answers 404 while OIDC_ISSUER is unset.</summary>
    public static IHostApplicationBuilder AddStreamSpaceOidc(this IHostApplicationBuilder builder)
    {
        builder.Services.AddHttpClient(nameof(ProviderTokens));
        builder.Services.AddSingleton<ProviderTokens>();
        builder.Services.AddSingleton<UsedNonces>();
        return builder;
    }
}
