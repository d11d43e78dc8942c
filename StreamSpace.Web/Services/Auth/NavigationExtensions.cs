using Microsoft.AspNetCore.Components;

namespace StreamSpace.Web.Services.Auth;

public static class NavigationExtensions
{
    /// <summary>
    /// Sends the user to the login page and back here afterwards: for a signed-out user, or when the API refuses the
    /// session's token (<see cref="Api.ApiError.IsSessionExpired"/>). A full page load, since logging in sets a cookie.
    /// </summary>
    public static void NavigateToLogin(this NavigationManager navigation)
    {
        var returnUrl = "/" + navigation.ToBaseRelativePath(navigation.Uri);
        navigation.NavigateTo($"{AuthExtensions.LoginPath}?returnUrl={Uri.EscapeDataString(returnUrl)}", forceLoad: true);
    }
}
