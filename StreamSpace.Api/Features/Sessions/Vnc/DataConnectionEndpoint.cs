using Microsoft.AspNetCore.Http.Features;
using StreamSpace.Contracts;
using StreamSpace.Contracts.Tunnel;

namespace StreamSpace.Api.Features.Sessions.Vnc;

/// <summary>
/// <c>/agent/data</c> on the API's HTTP port: the same answers as <see cref="DataListener"/>, for agents that reach
/// only the public URL (through an ingress or balancer). The upgrade is a raw HTTP/1.1 one, so no WebSocket framing.
/// </summary>
public static class DataConnectionEndpoint
{
    public static async Task HandleAsync(HttpContext context, PendingStreams streams)
    {
        var request = context.Request;
        var error = request.Headers[DataConnection.StreamErrorHeader].FirstOrDefault();
        var upgrade = context.Features.Get<IHttpUpgradeFeature>();
        if (error is null && (upgrade is not { IsUpgradableRequest: true } ||
            !string.Equals(request.Headers.Upgrade.ToString(), DataConnection.UpgradeProtocol, StringComparison.OrdinalIgnoreCase)))
        {
            context.Response.Headers.Upgrade = DataConnection.UpgradeProtocol;
            context.Response.StatusCode = StatusCodes.Status426UpgradeRequired;
            return;
        }

        var (admission, pending) = streams.Admit(request.Headers.Authorization.FirstOrDefault(), request.Headers[AgentProtocol.AgentIdHeader].FirstOrDefault(),
            request.Headers[DataConnection.SessionIdHeader].FirstOrDefault(), error);
        switch (admission)
        {
            case DataAdmission.Upgrade:
                context.Response.Headers.Upgrade = DataConnection.UpgradeProtocol;
                context.Response.Headers.Connection = "Upgrade";
                var stream = await upgrade!.UpgradeAsync();
                var link = new DataLink(stream);
                if (PendingStreams.Attach(pending!, link))
                {
                    // Returning would end the connection: it stays until the viewer's relay is done with it.
                    await link.Done;
                }

                return;
            case DataAdmission.Reported:
                context.Response.StatusCode = StatusCodes.Status204NoContent;
                return;
            case DataAdmission.Draining:
                context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
                return;
            default:
                context.Response.StatusCode = StatusCodes.Status401Unauthorized;
                return;
        }
    }
}
