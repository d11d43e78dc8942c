using System.Net;
using StreamSpace.Contracts;
using StreamSpace.Contracts.Api;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Api.Features.Sessions.List;

/// <summary>GET /api/v1/sessions is served from a cache; these are the freshness and privacy guarantees users rely on.</summary>
public sealed class SessionListTests(SessionFixture fixture) : IClassFixture<SessionFixture>
{
    [Fact]
    public async Task A_launch_is_in_the_next_list_and_the_agents_progress_reaches_the_list()
    {
        using var user = await fixture.Api.NewUserClientAsync();
        Assert.Empty(Ids(await ListAsync(user)));

        var id = (await user.LaunchAsync()).Id;
        // The list read just before the launch is cached; the launch must show at once, not when that copy expires.
        // (Pending, or already starting when the agent was quick.)
        Assert.NotNull(StateIn(await ListAsync(user), id));

        // Starting and running are written by the agent's reports, not by this user's requests.
        await user.WaitForStateAsync(id, SessionState.Running);
        await Eventually.TrueAsync(async () => StateIn(await ListAsync(user), id) == SessionState.Running, TimeSpan.FromSeconds(10), "the list to show the session running");

        Assert.Equal(HttpStatusCode.Accepted, (await user.DeleteAsync($"/api/v1/sessions/{id}")).StatusCode);
        Assert.Contains(StateIn(await ListAsync(user), id), new SessionState?[] { SessionState.Stopping, SessionState.Stopped });
    }

    [Fact]
    public async Task Each_user_lists_only_their_own_sessions_and_admins_list_everyones()
    {
        using var first = await fixture.Api.NewUserClientAsync();
        using var second = await fixture.Api.NewUserClientAsync();
        using var admin = await fixture.Api.AdminClientAsync();
        var firstId = (await first.LaunchAsync()).Id;
        var secondId = (await second.LaunchAsync()).Id;

        // Twice each, so the second answer of each comes from the cache.
        for (var i = 0; i < 2; i++)
        {
            Assert.Equal([firstId], Ids(await ListAsync(first)));
            Assert.Equal([secondId], Ids(await ListAsync(second)));
            var everyone = Ids(await ListAsync(admin));
            Assert.Contains(firstId, everyone);
            Assert.Contains(secondId, everyone);
        }
    }

    [Fact]
    public async Task A_deleted_users_sessions_stay_in_the_admins_list_stopping_and_without_a_username()
    {
        var username = "leaving-" + Guid.NewGuid().ToString("N")[..8];
        using var leaving = await fixture.Api.NewUserClientAsync(username);
        using var admin = await fixture.Api.AdminClientAsync();
        var id = (await leaving.LaunchAsync()).Id;
        Assert.Contains(id, Ids(await ListAsync(admin)));

        var users = await (await admin.GetAsync("/api/v1/users")).AssertJsonAsync<List<UserResponse>>(HttpStatusCode.OK);
        var userId = users.Single(u => u.Username == username).Id;
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"/api/v1/users/{userId}")).StatusCode);

        // The cached list must not keep showing the session as the user's live one.
        await Eventually.TrueAsync(async () =>
            (await ListAsync(admin)).SingleOrDefault(s => s.Id == id) is { State: SessionState.Stopping or SessionState.Stopped, Username: null },
            TimeSpan.FromSeconds(10), "the deleted user's session to show stopping, without a username");
    }

    private static async Task<List<SessionResponse>> ListAsync(HttpClient client) =>
        await (await client.GetAsync("/api/v1/sessions")).AssertJsonAsync<List<SessionResponse>>(HttpStatusCode.OK);

    private static List<string> Ids(List<SessionResponse> list) => [.. list.Select(s => s.Id)];

    private static SessionState? StateIn(List<SessionResponse> list, string id) => list.SingleOrDefault(s => s.Id == id)?.State;
}
