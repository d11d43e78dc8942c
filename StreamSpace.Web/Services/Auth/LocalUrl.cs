namespace StreamSpace.Web.Services.Auth;

/// <summary>Keeps <c>?returnUrl=</c> on this site, so the login page cannot be used to send users elsewhere.</summary>
public static class LocalUrl
{
    /// <summary>The URL when it is a path on this site (same rules as MVC's IsLocalUrl), otherwise <c>/</c>.</summary>
    public static string OrHome(string? url) => IsLocal(url) ? url! : "/";

    public static bool IsLocal(string? url) => url switch
    {
        null or "" => false,
        "/" => true,
        // "//host" and "/\host" are protocol-relative: browsers leave the site.
        ['/', '/' or '\\', ..] => false,
        ['/', ..] => !url.Any(char.IsControl),
        _ => false,
    };
}
