using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using StreamSpace.Contracts.Api;
using StreamSpace.Tests.Api.Features.Groups;
using StreamSpace.Tests.Api.Features.Sessions;

namespace StreamSpace.Tests.Agent.Kubernetes;

/// <summary>Groups' CPU and memory caps, from the API's launch through the agent's start command to the Deployment.</summary>
public sealed class KubernetesGroupCapsTests(KubernetesFixture fixture) : IClassFixture<KubernetesFixture>
{
    [Fact]
    public async Task The_most_generous_of_the_users_groups_caps_limits_the_deployments_resources_and_a_smaller_request_stays()
    {
        using var admin = await fixture.Api.AdminClientAsync();
        var template = GroupClient.UniqueName("k8s-big");
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync("/api/v1/templates",
            new { name = template, display_name = "Big", image = "example/session:1", resources = new { cpu = "2", memory = "4Gi" } })).StatusCode);
        var small = await admin.CreateGroupAsync(GroupClient.UniqueName("small"), new GroupQuotas(MaxCpuMillicores: 250, MaxMemoryMib: 768));
        // Sets no memory cap, so only the small group's counts for memory.
        var cpu = await admin.CreateGroupAsync(GroupClient.UniqueName("cpu"), new GroupQuotas(MaxCpuMillicores: 750));
        var username = GroupClient.UniqueName("frank");
        using var frank = await fixture.Api.NewUserClientAsync(username);
        await admin.AddMemberAsync(small, username);
        await admin.AddMemberAsync(cpu, username);

        var capped = await ResourcesAsync(frank, template);
        Assert.Equal(("750m", "768Mi"), capped.Requests);
        Assert.Equal(("750m", "768Mi"), capped.Limits);

        // The seeded xterm template asks for less than both caps (500m, 512Mi): it keeps its own values.
        Assert.Equal(("500m", "512Mi"), (await ResourcesAsync(frank, "xterm")).Requests);

        // Someone in no group gets the template as it is.
        using var other = await fixture.Api.NewUserClientAsync();
        Assert.Equal(("2", "4Gi"), (await ResourcesAsync(other, template)).Requests);
    }

    private async Task<((string Cpu, string Memory) Requests, (string Cpu, string Memory) Limits)> ResourcesAsync(HttpClient user, string template)
    {
        var id = (await user.LaunchAsync(template)).Id;
        await fixture.Kubelet.PodAsync(id);
        var resources = fixture.Kubernetes.Get("deployments", KubernetesFixture.Namespace, $"session-{id}")!["spec"]!["template"]!["spec"]!["containers"]![0]!["resources"]!;
        return (Read(resources["requests"]!), Read(resources["limits"]!));

        static (string, string) Read(JsonNode values) => (values["cpu"]!.GetValue<string>(), values["memory"]!.GetValue<string>());
    }
}
