using System.Net;
using System.Net.Http.Json;
using System.Text;
using StreamSpace.Contracts.Api;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Api.Features.Preferences;

public sealed class ViewerPreferencesTests(ApiFixture fixture) : IClassFixture<ApiFixture>
{
    private const string Route = "/api/v1/users/me/viewer-preferences";

    [Fact]
    public async Task Each_user_has_the_defaults_until_they_save_their_own_which_others_do_not_see()
    {
        using var first = await fixture.Api.NewUserClientAsync("prefs-a");
        using var second = await fixture.Api.NewUserClientAsync("prefs-b");
        Assert.False((await (await first.GetAsync(Route)).AssertJsonAsync<ViewerPreferences>(HttpStatusCode.OK)).ScaleViewport);

        var saved = await first.PutAsJsonAsync(Route, new ViewerPreferences(ScaleViewport: true), ApiJson.Options);
        Assert.True((await saved.AssertJsonAsync<ViewerPreferences>(HttpStatusCode.OK)).ScaleViewport);

        Assert.True((await (await first.GetAsync(Route)).AssertJsonAsync<ViewerPreferences>(HttpStatusCode.OK)).ScaleViewport);
        Assert.False((await (await second.GetAsync(Route)).AssertJsonAsync<ViewerPreferences>(HttpStatusCode.OK)).ScaleViewport);
    }

    [Fact]
    public async Task A_malformed_body_is_a_400_and_no_token_a_401()
    {
        using var user = await fixture.Api.NewUserClientAsync("prefs-bad");
        var malformed = await user.PutAsync(Route, new StringContent("""{"scale_viewport":"sometimes"}""", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, malformed.StatusCode);
        // A body without the setting is refused too, not read as "resize".
        await user.PutAsync(Route, new StringContent("""{"scale_viewport":true}""", Encoding.UTF8, "application/json"));
        var empty = await user.PutAsync(Route, new StringContent("{}", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, empty.StatusCode);
        Assert.Contains("\"scale_viewport\":true", await (await user.GetAsync(Route)).Content.ReadAsStringAsync());

        using var anonymous = fixture.Api.CreateClient();
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync(Route)).StatusCode);
    }

    [Fact]
    public async Task Muting_is_remembered_and_a_put_without_it_keeps_it()
    {
        using var user = await fixture.Api.NewUserClientAsync("prefs-mute");
        Assert.False((await (await user.GetAsync(Route)).AssertJsonAsync<ViewerPreferences>(HttpStatusCode.OK)).AudioMuted);

        var muted = await (await user.PutAsJsonAsync(Route, new ViewerPreferences(ScaleViewport: false, AudioMuted: true), ApiJson.Options))
            .AssertJsonAsync<ViewerPreferences>(HttpStatusCode.OK);
        Assert.Equal(new ViewerPreferences(false, true), muted);

        // An older viewer's PUT (scale only) changes the scale and leaves the sound muted.
        var scaled = await (await user.PutAsync(Route, new StringContent("""{"scale_viewport":true}""", Encoding.UTF8, "application/json")))
            .AssertJsonAsync<ViewerPreferences>(HttpStatusCode.OK);
        Assert.Equal(new ViewerPreferences(true, true), scaled);
        Assert.Equal(new ViewerPreferences(true, true), await (await user.GetAsync(Route)).AssertJsonAsync<ViewerPreferences>(HttpStatusCode.OK));

        await user.PutAsJsonAsync(Route, new ViewerPreferences(ScaleViewport: true, AudioMuted: false), ApiJson.Options);
        Assert.Equal(new ViewerPreferences(true, false), await (await user.GetAsync(Route)).AssertJsonAsync<ViewerPreferences>(HttpStatusCode.OK));
    }
}
