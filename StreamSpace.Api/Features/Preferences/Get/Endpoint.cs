using FastEndpoints;
using StreamSpace.Api.Features.Auth;

namespace StreamSpace.Api.Features.Preferences.Get;

public sealed class GetViewerPreferencesEndpoint(ViewerPreferenceStore preferences) : EndpointWithoutRequest<ViewerPreferences>
{
    public override void Configure()
    {
        Get("users/me/viewer-preferences");
        Summary(s => s.Summary = "Returns how the signed-in user's viewer shows a desktop (the defaults until changed).");
    }

    public override async Task HandleAsync(CancellationToken cancellationToken) =>
        await Send.OkAsync(await preferences.GetAsync(User.RequiredUserId(), cancellationToken), cancellationToken);
}
