using System.Text.Json.Serialization;

namespace StreamSpace.Contracts.Api;

/// <summary>
/// <c>GET/PUT /api/v1/users/me/viewer-preferences</c>: how the signed-in user's viewer shows a desktop, kept on the
/// server so it follows the user to another browser. <see cref="ScaleViewport"/> false (the default): the session's
/// desktop takes the viewer's size; true: the desktop keeps its size and the viewer scales it to fit. Required in a PUT:
/// a body without it is refused (400), not read as false. <see cref="AudioMuted"/>: the viewer plays no sound (false by
/// default); a PUT without it keeps what is stored, and every GET and PUT answer carries it.
/// </summary>
public sealed record ViewerPreferences([property: JsonRequired] bool ScaleViewport, bool? AudioMuted = null);
