using System.Security.Claims;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Protocols;
using Microsoft.IdentityModel.Protocols.OpenIdConnect;
using Microsoft.IdentityModel.Tokens;
using StreamSpace.Api.Features.Users;

namespace StreamSpace.Api.Features.Auth.Oidc;

/// <summary>
/// Validates the OpenID provider's ID tokens on the API's own authority: the signature against the keys of the
/// provider's discovery document (fetched from OIDC_ISSUER, cached, re-fetched when a token names an unknown key),
/// the issuer, the audience (OIDC_CLIENT_ID), the expiry and the token's age. Then reads the user from its claims.
/// The web UI, which ran the code flow, is not trusted for any of it.
/// </summary>
public sealed class ProviderTokens
{
    /// <summary>An ID token is exchanged right after the provider issued it; an older one is a replay.</summary>
    public static readonly TimeSpan MaximumAge = TimeSpan.FromMinutes(10);

    private static readonly TimeSpan ClockSkew = TimeSpan.FromMinutes(1);

    private readonly ApiSettings settings;
    private readonly TimeProvider time;
    private readonly JsonWebTokenHandler handler = new() { MapInboundClaims = false };

    public ProviderTokens(ApiSettings settings, TimeProvider time, IHttpClientFactory httpClients)
    {
        this.settings = settings;
        this.time = time;
        var issuer = settings.OidcIssuer.TrimEnd('/');
        Configuration = new ConfigurationManager<OpenIdConnectConfiguration>(
            issuer + "/.well-known/openid-configuration",
            new OpenIdConnectConfigurationRetriever(),
            // SignInSettings allows plain http only for a provider on this machine.
            new HttpDocumentRetriever(httpClients.CreateClient(nameof(ProviderTokens))) { RequireHttps = !StreamSpace.Settings.SignInSettings.IsPlainHttp(issuer) });
    }

    /// <summary>The provider's discovery document and keys, for diagnostics too.</summary>
    public ConfigurationManager<OpenIdConnectConfiguration> Configuration { get; }

    /// <summary>The identity in a valid ID token, with its nonce; or why the token is refused.</summary>
    public async Task<(ProviderIdentity? Identity, string? Nonce, string? Refusal)> ValidateAsync(string idToken, CancellationToken cancellationToken)
    {
        var issuer = settings.OidcIssuer.TrimEnd('/');
        var result = await handler.ValidateTokenAsync(idToken, new TokenValidationParameters
        {
            ValidIssuers = [issuer, issuer + "/"],
            ValidAudience = settings.OidcClientId,
            ConfigurationManager = Configuration,
            RequireSignedTokens = true,
            RequireExpirationTime = true,
            ClockSkew = ClockSkew,
            LifetimeValidator = (notBefore, expires, _, _) =>
            {
                var now = time.GetUtcNow().UtcDateTime;
                return expires is { } e && e + ClockSkew > now && (notBefore is not { } n || n - ClockSkew <= now);
            },
        });
        if (!result.IsValid || result.SecurityToken is not JsonWebToken token)
        {
            // The reason names what failed (issuer, audience, signature, lifetime), never the token's content.
            return (null, null, $"The ID token is not valid: {result.Exception?.GetType().Name.Replace("SecurityToken", "", StringComparison.Ordinal).Replace("Exception", "", StringComparison.Ordinal) ?? "refused"}.");
        }

        if (token.Audiences.Count() > 1 && Claim(token, "azp") != settings.OidcClientId)
        {
            return (null, null, "The ID token was issued to another client (azp).");
        }

        if (time.GetUtcNow().UtcDateTime - token.IssuedAt > MaximumAge + ClockSkew)
        {
            return (null, null, "The ID token is too old to be exchanged; sign in again.");
        }

        if (Claim(token, "nonce") is not { Length: > 0 } nonce)
        {
            return (null, null, "The ID token has no nonce: it was not issued for a sign-in through StreamSpace.");
        }

        if (Claim(token, settings.OidcUsernameClaim) is not { Length: > 0 } username)
        {
            return (null, null, $"The ID token has no '{settings.OidcUsernameClaim}' claim to take the username from (OIDC_USERNAME_CLAIM).");
        }

        if (username.Length > UsernameRules.MaximumLength || !System.Text.RegularExpressions.Regex.IsMatch(username, UsernameRules.Pattern))
        {
            return (null, null, $"The provider's username '{username}' is not a valid StreamSpace username (letters, digits, '.', '_', '@' and '-', at most {UsernameRules.MaximumLength}).");
        }

        var groups = token.Claims.Where(c => c.Type == settings.OidcGroupsClaim).Select(c => c.Value).Where(g => g.Length > 0).Distinct(StringComparer.Ordinal).ToList();
        // Without OIDC_ADMIN_GROUPS the claim decides no role: admins set roles in StreamSpace, and sign-ins keep them.
        var adminGroups = settings.OidcAdminGroupSet;
        string? role = adminGroups.Count == 0 ? null : groups.Any(adminGroups.Contains) ? UserRoles.Admin : UserRoles.User;
        var identity = new ProviderIdentity(token.Issuer, token.Subject, username, Claim(token, settings.OidcNameClaim),
            Claim(token, settings.OidcEmailClaim), groups, role);
        return (identity, nonce, null);
    }

    private static string? Claim(JsonWebToken token, string type) =>
        token.Claims.FirstOrDefault(c => c.Type == type) is Claim { Value: { Length: > 0 } value } ? value : null;
}
