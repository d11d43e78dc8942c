using FastEndpoints;
using StreamSpace.Api.Features.Auth;

namespace StreamSpace.Api.Features.Diagnostics;

public sealed class DiagnosticsRequest
{
    /// <summary>Also ask each running session's agent to reach its VNC server (slower).</summary>
    [QueryParam] public bool Probe { get; set; }
}

public sealed class DiagnosticsEndpoint(DiagnosticsService diagnostics) : Endpoint<DiagnosticsRequest, DiagnosticsReport>
{
    public override void Configure()
    {
        Get("admin/diagnostics");
        Roles(UserRoles.Admin);
        Summary(s => s.Summary = "Runs the troubleshooting guide's checks and reports each with its evidence and fix (admin only).");
    }

    public override async Task HandleAsync(DiagnosticsRequest request, CancellationToken cancellationToken) =>
        await Send.OkAsync(await diagnostics.RunAsync(request.Probe, cancellationToken), cancellationToken);
}
