namespace StreamSpace.Web.Features.Api;

/// <summary>The API paths the web calls, relative to <see cref="ApiClientExtensions.BaseAddress"/>.</summary>
public static class ApiRoutes
{
    public const string Login = "api/v1/auth/login";
    public const string Me = "api/v1/auth/me";
}
