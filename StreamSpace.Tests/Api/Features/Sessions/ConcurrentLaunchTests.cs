using System.Net;
using System.Net.Http.Json;
using StreamSpace.Contracts;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Api.Features.Sessions;

/// <summary>
/// Launches that arrive together: the agent answers them in parallel (the hub's message lanes) and the launches lock
/// the owner's and the agent's rows only at their end. Nothing may be lost or reordered on the way.
/// </summary>
public sealed class ConcurrentLaunchTests(SessionFixture fixture) : IClassFixture<SessionFixture>
{
    private const int Launches = 10;

    [Fact]
    public async Task Ten_launches_at_once_by_one_user_all_run_and_each_session_keeps_its_order_of_states()
    {
        using var user = await fixture.Api.NewUserClientAsync();
        using var admin = await fixture.Api.AdminClientAsync();

        var ids = (await Task.WhenAll(Enumerable.Range(0, Launches).Select(_ => user.LaunchAsync()))).Select(s => s.Id).ToList();
        Assert.Equal(Launches, ids.Distinct().Count());
        await Task.WhenAll(ids.Select(id => user.WaitForStateAsync(id, SessionState.Running, TimeSpan.FromSeconds(90))));

        // Stopped together too, so the agent's results and state reports for different sessions interleave.
        foreach (var response in await Task.WhenAll(ids.Select(id => user.DeleteAsync($"/api/v1/sessions/{id}"))))
        {
            Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        }

        await Task.WhenAll(ids.Select(id => user.WaitForStateAsync(id, SessionState.Stopped, TimeSpan.FromSeconds(60))));
        foreach (var id in ids)
        {
            Assert.Equal([SessionState.Starting, SessionState.Running, SessionState.Stopping, SessionState.Stopped], await admin.StateChangesAsync(id));
        }
    }

    [Fact]
    public async Task Launches_at_once_never_overrun_the_agents_capacity()
    {
        using var user = await fixture.Api.NewUserClientAsync();
        // The fixture's quota is 20 and its agent takes 10 (MAX_SESSIONS): of 15 launches at once, exactly 10 find a place.
        var answers = await Task.WhenAll(Enumerable.Range(0, 15).Select(_ => user.PostAsJsonAsync("/api/v1/sessions", new { template = "xterm" })));
        var accepted = new List<string>();
        foreach (var answer in answers)
        {
            if (answer.StatusCode == HttpStatusCode.Accepted)
            {
                accepted.Add((await answer.AssertJsonAsync<StreamSpace.Contracts.Api.SessionResponse>(HttpStatusCode.Accepted)).Id);
            }
            else
            {
                await answer.AssertProblemAsync(HttpStatusCode.ServiceUnavailable);
            }
        }

        try
        {
            Assert.Equal(10, accepted.Count);
        }
        finally
        {
            // The other test needs the agent's places back.
            await Task.WhenAll(accepted.Select(id => user.DeleteAsync($"/api/v1/sessions/{id}")));
            await Task.WhenAll(accepted.Select(id => user.WaitForStateAsync(id, SessionState.Stopped, TimeSpan.FromSeconds(90))));
        }
    }
}
