using StreamSpace.Contracts.Api;

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
    public const string MyTokens = "api/v1/users/me/tokens";
    public const string Usage = "api/v1/admin/usage";
    public const string Groups = "api/v1/admin/groups";
    /// <summary>The recordings' routes are the contract's (<see cref="RecordingRoutes"/>), made relative like the rest.</summary>
    public static readonly string Recordings = RecordingRoutes.List.TrimStart('/');

    public static string MyToken(Guid id) => $"{MyTokens}/{id}";

    public static string Template(string name) => $"{Templates}/{Uri.EscapeDataString(name)}";

    public static string Session(string id) => $"{Sessions}/{Uri.EscapeDataString(id)}";

    /// <summary>POST: hibernate, wake or connect.</summary>
    public static string SessionAction(string id, string action) => $"{Session(id)}/{action}";

    /// <summary>A share as its recipient sees it; POST <c>/connect</c> under it for a VNC ticket.</summary>
    public static string Share(string id) => $"api/v1/shares/{Uri.EscapeDataString(id)}";

    public static string Agent(string id) => $"{Agents}/{Uri.EscapeDataString(id)}";

    public static string User(Guid id) => $"{Users}/{id}";

    public static string Group(Guid id) => $"{Groups}/{id}";

    /// <summary>PUT: replaces the group's quotas.</summary>
    public static string GroupQuotas(Guid id) => $"{Group(id)}/quotas";

    /// <summary>POST: adds a member by username.</summary>
    public static string GroupMembers(Guid id) => $"{Group(id)}/members";

    /// <summary>DELETE: removes the member.</summary>
    public static string GroupMember(Guid id, Guid userId) => $"{GroupMembers(id)}/{userId}";

    /// <summary>PUT: limits the template to the group; DELETE: takes it from the group.</summary>
    public static string GroupTemplate(Guid id, string template) => $"{Group(id)}/templates/{Uri.EscapeDataString(template)}";

    public static string Recording(Guid id) => RecordingRoutes.One(id).TrimStart('/');

    /// <summary>The recording file the player replays, streamed from its agent.</summary>
    public static string RecordingFile(Guid id) => RecordingRoutes.File(id).TrimStart('/');

    /// <summary>The recording as an MP4 attachment.</summary>
    public static string RecordingExport(Guid id) => RecordingRoutes.Export(id).TrimStart('/');

    /// <summary>POST: an admin has the running session recorded until it stops.</summary>
    public static string RecordSession(string id) => RecordingRoutes.RecordSession(Uri.EscapeDataString(id)).TrimStart('/');
}
