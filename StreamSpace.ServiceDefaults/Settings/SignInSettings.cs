namespace StreamSpace.Settings;

/// <summary>
/// The sign-in settings the API and the web UI both read (OIDC_ISSUER, OIDC_CLIENT_ID, LOCAL_LOGIN): one set of rules,
/// so the two processes never accept different values.
/// </summary>
public static class SignInSettings
{
    /// <summary>
    /// Whether the provider is reached over plain http (allowed only on this machine, see <see cref="Validate"/>); the
    /// one test both processes use to decide whether its metadata must come over https.
    /// </summary>
    public static bool IsPlainHttp(string issuer) => Uri.TryCreate(issuer, UriKind.Absolute, out var url) && url.Scheme == Uri.UriSchemeHttp;

    /// <summary>Stops the process at start, naming the setting, when the three do not make a working sign-in.</summary>
    public static void Validate(string issuer, string clientId, bool localLogin)
    {
        if (issuer is { Length: > 0 })
        {
            if (!Uri.TryCreate(issuer, UriKind.Absolute, out var url) || url.Scheme is not ("http" or "https") || url.Query.Length > 0 || url.Fragment.Length > 0)
            {
                throw new InvalidSettingException("OIDC_ISSUER", $"has an invalid value '{issuer}': expected the provider's issuer URL, such as https://id.example.com/realms/staff.");
            }

            // The provider's keys and discovery document come from this URL: over plain http anyone on the path could
            // swap the keys and sign in as anybody. Plain http only to this machine (a provider in development or tests).
            if (url.Scheme == "http" && !url.IsLoopback)
            {
                throw new InvalidSettingException("OIDC_ISSUER", $"must be an https:// URL (plain http only for a provider on this machine), not '{issuer}'.");
            }

            if (clientId is not { Length: > 0 })
            {
                throw new InvalidSettingException("OIDC_CLIENT_ID", "is required with OIDC_ISSUER: the client id StreamSpace is registered under at the provider.");
            }
        }
        else if (clientId is { Length: > 0 })
        {
            throw new InvalidSettingException("OIDC_ISSUER", "is required with OIDC_CLIENT_ID: the provider's issuer URL.");
        }

        if (!localLogin && issuer is not { Length: > 0 })
        {
            throw new InvalidSettingException("LOCAL_LOGIN", "can be false only with OIDC_ISSUER set: users would have no way to sign in.");
        }
    }
}
