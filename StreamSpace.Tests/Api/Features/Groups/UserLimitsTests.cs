using StreamSpace.Api.Features.Groups;
using StreamSpace.Contracts;

namespace StreamSpace.Tests.Api.Features.Groups;

public sealed class UserLimitsTests
{
    [Theory]
    // Above the cap: the cap, in the unit the group sets it in.
    [InlineData("2", "4Gi", 1500, 2048, "1500m", "2048Mi")]
    [InlineData("2500m", "3G", 1000, 1024, "1000m", "1024Mi")]
    // At or below the cap: the template's own spelling.
    [InlineData("0.5", "512Mi", 500, 512, "0.5", "512Mi")]
    [InlineData("100m", "268435456", 500, 512, "100m", "268435456")]
    // No cap: the template as it is.
    [InlineData("4", "8Gi", null, null, "4", "8Gi")]
    // Asking for nothing, or for something that is not a quantity, gets the cap.
    [InlineData(null, "", 250, 128, "250m", "128Mi")]
    [InlineData("lots", "1 gig", 250, 128, "250m", "128Mi")]
    public void A_cap_limits_the_templates_cpu_and_memory_to_the_smaller_of_the_two(string? cpu, string? memory, int? maxCpu, int? maxMemory,
        string expectedCpu, string expectedMemory)
    {
        var template = new SessionTemplate("t", "image", null, 5900, cpu, memory, new Dictionary<string, string>(), true, 0, null);
        var capped = new UserLimits { MaxCpuMillicores = maxCpu, MaxMemoryMib = maxMemory }.Cap(template);
        Assert.Equal((expectedCpu, expectedMemory), (capped.Cpu, capped.Memory));
    }
}
