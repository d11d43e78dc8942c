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

    /// <summary>
    /// Users reach the site over TLS, so the auth cookie must never travel over plain http, even when a proxy that
    /// terminates TLS forwards requests to this process as http.
    /// </summary>
    public bool SecureCookies => PublicUrl.StartsWith("https://", StringComparison.OrdinalIgnoreCase);

    public void Validate()
    {
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
