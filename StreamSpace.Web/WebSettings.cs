using StreamSpace.Settings;

namespace StreamSpace.Web;

/// <summary>What the web UI reads from its environment besides the API's address and trusted proxies.</summary>
public sealed class WebSettings : IValidatedSettings
{
    [Setting("ConnectionStrings__streamspace", Required = true, Secret = true,
        Help = "the API's PostgreSQL connection string: the web keeps its Data Protection keys there, so cookies survive restarts and work on every replica")]
    public string ConnectionString { get; set; } = "";

    [Setting("PUBLIC_URL", Help = "where users reach StreamSpace, e.g. https://streamspace.example.com; https makes the auth cookie Secure")]
    public string PublicUrl { get; set; } = "";

    [Setting("VIEWER_VNC_PORT", Help = "the port of the API that browsers open the viewer's /vnc WebSocket on, at the page's host name; 0: the page's own origin (an ingress routes /vnc to the API)")]
    public int ViewerVncPort { get; set; }

    [Setting("OIDC_ISSUER", Help = "the OpenID provider's issuer URL; set, the login page offers \"Sign in with OIDC_DISPLAY_NAME\"")]
    public string OidcIssuer { get; set; } = "";

    [Setting("OIDC_CLIENT_ID", Help = "the client id StreamSpace is registered under at the provider")]
    public string OidcClientId { get; set; } = "";

    [Setting("OIDC_CLIENT_SECRET", Secret = true, Help = "the client's secret at the provider; empty for a public client (PKCE alone)")]
    public string OidcClientSecret { get; set; } = "";

    [Setting("OIDC_SCOPES", Help = "space-separated scopes to ask the provider for; openid is required")]
    public string OidcScopes { get; set; } = "openid profile email";

    [Setting("OIDC_DISPLAY_NAME", Help = "the provider's name on the login page's \"Sign in with …\" button")]
    public string OidcDisplayName { get; set; } = "single sign-on";

    [Setting("OIDC_END_SESSION", Help = "true: logging out of StreamSpace also signs the user out of the provider (its end_session_endpoint)")]
    public bool OidcEndSession { get; set; }

    [Setting("LOCAL_LOGIN", Help = "false hides the password form; only the bootstrap admin may still use it, through the login page's administrator link")]
    public bool LocalLogin { get; set; } = true;

    public bool OidcEnabled => OidcIssuer.Length > 0;

    public IReadOnlyList<string> OidcScopeList => OidcScopes.Split(' ', StringSplitOptions.RemoveEmptyEntries);

    /// <summary>
    /// Users reach the site over TLS, so the auth cookie must never travel over plain http, even when a proxy that
    /// terminates TLS forwards requests to this process as http.
    /// </summary>
    public bool SecureCookies => PublicUrl.StartsWith("https://", StringComparison.OrdinalIgnoreCase);

    public void Validate()
    {
        SignInSettings.Validate(OidcIssuer, OidcClientId, LocalLogin);
        if (OidcEnabled && !OidcScopeList.Contains("openid"))
        {
            throw new InvalidSettingException("OIDC_SCOPES", $"must include openid, not only '{OidcScopes}'.");
        }

        if (OidcEnabled && OidcDisplayName.Trim().Length == 0)
        {
            throw new InvalidSettingException("OIDC_DISPLAY_NAME", "must not be empty: it names the provider on the login page.");
        }

        if (ViewerVncPort is < 0 or > 65535)
        {
            throw new InvalidSettingException("VIEWER_VNC_PORT", "must be a port number from 1 to 65535, or 0 for the page's own origin.");
        }

        if (PublicUrl is { Length: > 0 } && !(Uri.TryCreate(PublicUrl, UriKind.Absolute, out var url) && url.Scheme is "http" or "https"))
        {
            throw new InvalidSettingException("PUBLIC_URL", $"has an invalid value '{PublicUrl}': expected an http:// or https:// URL such as https://streamspace.example.com.");
        }
    }
}
