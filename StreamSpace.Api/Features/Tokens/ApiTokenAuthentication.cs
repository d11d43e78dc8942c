using System.Globalization;
using System.Security.Claims;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;
using StreamSpace.Api.Features.Auth;

namespace StreamSpace.Api.Features.Tokens;

/// <summary>
/// Authenticates <c>Authorization: Bearer ssp_…</c>: the token's row (found by its hash) must be neither revoked nor
/// expired, and its user must pass the same <see cref="ActiveUserCheck"/> as a JWT's (exists, not disabled, same role,
/// same token version). The principal carries the user's claims and one <c>scope</c> claim per scope.
/// </summary>
public sealed class ApiTokenAuthenticationHandler(IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder,
    ApiTokenStore tokens, ActiveUserCheck activeUsers, TimeProvider time)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "ApiToken";

    /// <summary>The default scheme: it sends <c>ssp_</c> bearers here and every other request to the JWT bearer scheme.</summary>
    public const string SelectorSchemeName = "BearerOrApiToken";

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        if (BearerToken(Request) is not { } token || !ApiTokenSecret.LooksLikeToken(token))
        {
            return AuthenticateResult.NoResult();
        }

        var match = await tokens.FindBySecretAsync(token, Context.RequestAborted);
        if (match is null)
        {
            return AuthenticateResult.Fail("the API token is not known");
        }

        if (ApiTokenStore.Rejection(match.ExpiresAt, match.RevokedAt, time.GetUtcNow()) is { } refused)
        {
            return AuthenticateResult.Fail(refused);
        }

        var principal = Principal(match);
        if (await activeUsers.UserRejectionAsync(principal, Context.RequestAborted) is { } rejection)
        {
            return AuthenticateResult.Fail(rejection);
        }

        await tokens.TouchAsync(match, Context.RequestAborted);
        return AuthenticateResult.Success(new AuthenticationTicket(principal, SchemeName));
    }

    /// <summary>401 with the reason as problem details, so a script's log says why (revoked, expired, user disabled).</summary>
    protected override async Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        var result = await HandleAuthenticateOnceSafeAsync();
        Response.Headers.WWWAuthenticate = "Bearer error=\"invalid_token\"";
        var reason = result.Failure?.Message ?? "an API token is required";
        await TypedResults.Problem(title: "The API token was refused.", detail: Capitalised(reason) + ".",
            statusCode: StatusCodes.Status401Unauthorized).ExecuteAsync(Context);
    }

    protected override Task HandleForbiddenAsync(AuthenticationProperties properties) =>
        TypedResults.Problem(title: "Forbidden.", detail: "The token's user may not do this.", statusCode: StatusCodes.Status403Forbidden)
            .ExecuteAsync(Context);

    private static ClaimsPrincipal Principal(ApiTokenMatch match)
    {
        List<Claim> claims =
        [
            new(ClaimNames.Subject, match.UserId.ToString()),
            new(ClaimNames.Name, match.Username),
            new(ClaimNames.Role, match.Role),
            new(ClaimNames.TokenVersion, match.TokenVersion.ToString(CultureInfo.InvariantCulture), ClaimValueTypes.Integer32),
            new(ClaimNames.ApiTokenId, match.Id.ToString()),
            new("exp", new DateTimeOffset(DateTime.SpecifyKind(match.ExpiresAt, DateTimeKind.Utc)).ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture),
                ClaimValueTypes.Integer64),
        ];
        claims.AddRange(match.Scopes.Select(scope => new Claim(ClaimNames.Scope, scope)));
        return new ClaimsPrincipal(new ClaimsIdentity(claims, SchemeName, ClaimNames.Name, ClaimNames.Role));
    }

    /// <summary>The bearer token of the request, or null.</summary>
    public static string? BearerToken(HttpRequest request)
    {
        var header = request.Headers.Authorization.ToString();
        const string bearer = "Bearer ";
        return header.StartsWith(bearer, StringComparison.OrdinalIgnoreCase) ? header[bearer.Length..].Trim() : null;
    }

    private static string Capitalised(string text) => text.Length == 0 ? text : char.ToUpperInvariant(text[0]) + text[1..];
}

public static class ApiTokenClaims
{
    /// <summary>The API token the principal signed in with; null for a password sign-in (JWT).</summary>
    public static Guid? ApiTokenId(this ClaimsPrincipal user) =>
        Guid.TryParse(user.FindFirst(ClaimNames.ApiTokenId)?.Value, out var id) ? id : null;

    public static bool HasScope(this ClaimsPrincipal user, string scope) => user.HasClaim(ClaimNames.Scope, scope);
}
