using FastEndpoints;
using StreamSpace.Api.Features.Auth;

namespace StreamSpace.Api.Features.Preferences.Update;

public sealed class UpdateViewerPreferencesEndpoint(ViewerPreferenceStore preferences) : Endpoint<ViewerPreferences, ViewerPreferences>
{
    public override void Configure()
    {
        Put("users/me/viewer-preferences");
        Summary(s => s.Summary = "Saves how the signed-in user's viewer shows a desktop, for every browser they use.");
    }

    public override async Task HandleAsync(ViewerPreferences request, CancellationToken cancellationToken)
    {
        await Send.OkAsync(await preferences.SaveAsync(User.RequiredUserId(), request, cancellationToken), cancellationToken);
    }
}
