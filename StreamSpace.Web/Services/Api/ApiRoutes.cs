namespace StreamSpace.Web.Services.Api;

/// <summary>The API paths the web calls, relative to <see cref="ApiClientExtensions.BaseAddress"/>.</summary>
public static class ApiRoutes
{
    public const string Login = "api/v1/auth/login";
    public const string OidcSignIn = "api/v1/auth/oidc";
    public const string Logout = "api/v1/auth/logout";
    public const string Me = "api/v1/auth/me";
    public const string Templates = "api/v1/templates";
    public const string Sessions = "api/v1/sessions";
    public const string SessionEvents = "api/v1/sessions/events";
    public const string Agents = "api/v1/agents";
    public const string Users = "api/v1/users";
    public const string Audit = "api/v1/audit";
    public const string Diagnostics = "api/v1/admin/diagnostics";

    public static string Template(string name) => $"{Templates}/{Uri.EscapeDataString(name)}";

    public static string Session(string id) => $"{Sessions}/{Uri.EscapeDataString(id)}";

    /// <summary>POST: hibernate, wake or connect.</summary>
    public static string SessionAction(string id, string action) => $"{Session(id)}/{action}";

    public static string Agent(string id) => $"{Agents}/{Uri.EscapeDataString(id)}";

    public static string User(Guid id) => $"{Users}/{id}";
}
