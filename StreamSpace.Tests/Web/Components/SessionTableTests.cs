using Bunit;
using StreamSpace.Contracts;
using StreamSpace.Contracts.Api;
using StreamSpace.Web.Components.Shared;

namespace StreamSpace.Tests.Web.Components;

/// <summary>
/// The buttons of "My sessions" follow each session's state: what a user may do now, and nothing they may not.
/// Playwright reaches the running session's buttons; these cover every state.
/// </summary>
public sealed class SessionTableTests : BunitContext
{
    [Theory]
    [InlineData(SessionState.Pending, new[] { "Stop" })]
    [InlineData(SessionState.Starting, new[] { "Stop" })]
    [InlineData(SessionState.Running, new[] { "Connect", "Hibernate", "Stop" })]
    [InlineData(SessionState.Hibernating, new[] { "Stop" })]
    [InlineData(SessionState.Hibernated, new[] { "Wake", "Stop" })]
    [InlineData(SessionState.Waking, new[] { "Stop" })]
    [InlineData(SessionState.Stopping, new string[0])]
    [InlineData(SessionState.Stopped, new string[0])]
    [InlineData(SessionState.Failed, new string[0])]
    public void Each_state_offers_only_the_actions_it_allows(SessionState state, string[] offered)
    {
        var table = Render<SessionTable>(parameters => parameters.Add(p => p.Sessions, [Session("sess-1", state)]));

        Assert.Equal(offered, table.FindAll(".actions a, .actions button").Select(e => e.TextContent.Trim()));
        Assert.Equal(state.ToName(), table.Find(".state").TextContent);
    }

    [Fact]
    public void A_button_asks_for_its_action_on_its_own_session()
    {
        var asked = new List<(string Id, SessionAction Action)>();
        var table = Render<SessionTable>(parameters => parameters
            .Add(p => p.Sessions, [Session("sess-running", SessionState.Running), Session("sess-hibernated", SessionState.Hibernated)])
            .Add(p => p.OnAction, request => asked.Add((request.Session.Id, request.Action))));

        table.Find("[aria-label='Wake xterm session']").Click();
        table.Find("tr[data-session-id='sess-running'] [aria-label='Hibernate xterm session']").Click();
        table.Find("tr[data-session-id='sess-hibernated'] [aria-label='Stop xterm session']").Click();

        Assert.Equal([("sess-hibernated", SessionAction.Wake), ("sess-running", SessionAction.Hibernate), ("sess-hibernated", SessionAction.Stop)], asked);
    }

    [Fact]
    public void Without_lifecycle_actions_a_running_session_can_only_be_connected_to_and_stopped()
    {
        var table = Render<SessionTable>(parameters => parameters
            .Add(p => p.Sessions, [Session("sess-1", SessionState.Running)])
            .Add(p => p.ShowLifecycle, false));

        Assert.Equal(["Connect", "Stop"], table.FindAll(".actions a, .actions button").Select(e => e.TextContent.Trim()));
        Assert.Equal("sessions/sess-1/view", table.Find(".actions a").GetAttribute("href"));
    }

    [Fact]
    public void A_recorded_session_is_marked_and_an_admin_may_have_a_running_unrecorded_one_recorded()
    {
        var asked = new List<string>();
        var table = Render<SessionTable>(parameters => parameters
            .Add(p => p.Sessions, [Session("sess-recorded", SessionState.Running, recording: true), Session("sess-plain", SessionState.Running),
                Session("sess-asleep", SessionState.Hibernated)])
            .Add(p => p.ShowLifecycle, false)
            .Add(p => p.OnRecord, session => asked.Add(session.Id)));

        Assert.Equal("● Recording", table.Find("tr[data-session-id='sess-recorded'] .recording-badge").TextContent);
        Assert.Empty(table.FindAll("tr[data-session-id='sess-plain'] .recording-badge"));
        // Record only where it can start: running, and not recorded already.
        Assert.Equal(["sess-plain"], table.FindAll("tr").Where(r => r.QuerySelector("[aria-label^='Record']") is not null).Select(r => r.GetAttribute("data-session-id")));
        table.Find("tr[data-session-id='sess-plain'] [aria-label^='Record']").Click();
        Assert.Equal(["sess-plain"], asked);
    }

    [Fact]
    public void Without_an_admin_to_ask_no_record_action_is_offered()
    {
        var table = Render<SessionTable>(parameters => parameters.Add(p => p.Sessions, [Session("sess-1", SessionState.Running)]));

        Assert.Empty(table.FindAll("[aria-label^='Record']"));
    }

    private static SessionResponse Session(string id, SessionState state, bool recording = false) => new(id, Guid.NewGuid(), "someone", "xterm", state,
        null, "agent-1", "local", default, DateTimeOffset.UtcNow, DateTimeOffset.UtcNow, null, null, null, recording);
}
