using System.Text;
using Microsoft.AspNetCore.Http.Features;
using StreamSpace.Contracts;
using StreamSpace.Contracts.Tunnel;

namespace StreamSpace.Api.Features.Sessions.Vnc;

/// <summary>
/// <c>/agent/data</c> on the API's HTTP port: the same answers as <see cref="DataListener"/>, for agents that reach
/// only the public URL (through an ingress or balancer). The upgrade is a raw HTTP/1.1 one, so no WebSocket framing.
/// The balancer picks any replica, so a request whose token another replica issued is forwarded there.
/// </summary>
public static class DataConnectionEndpoint
{
    public static async Task HandleAsync(HttpContext context, PendingStreams streams, DataForwarder forwarder)
    {
        var request = context.Request;
        if (forwarder.OtherIssuer(request.Headers.Authorization.FirstOrDefault()) is { } issuer)
        {
            await ForwardAsync(context, forwarder, issuer);
            return;
        }

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
                var link = await PendingStreams.UpgradeAsync(pending!, upgrade!.UpgradeAsync);
                if (link is not null)
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

    /// <summary>
    /// The forward hop on Kestrel: the request head is rebuilt from what Kestrel parsed (it keeps no raw copy), sent to
    /// the issuing replica, and its status passed on; after a 101 the two connections are joined.
    /// </summary>
    private static async Task ForwardAsync(HttpContext context, DataForwarder forwarder, Guid issuer)
    {
        var head = new StringBuilder($"GET {DataConnection.Path} HTTP/1.1\r\n");
        foreach (var (name, values) in context.Request.Headers)
        {
            head.Append(name).Append(": ").Append(values.ToString()).Append("\r\n");
        }

        var aborted = context.RequestAborted;
        await using var target = await forwarder.OpenAsync(issuer, Encoding.ASCII.GetBytes(head.Append("\r\n").ToString()), aborted);
        if (target is null)
        {
            context.Response.StatusCode = StatusCodes.Status401Unauthorized;
            return;
        }

        int status;
        try
        {
            status = await DataConnection.ReadStatusAsync(target, aborted);
        }
        catch (IOException)
        {
            context.Response.StatusCode = StatusCodes.Status502BadGateway;
            return;
        }

        var upgrade = context.Features.Get<IHttpUpgradeFeature>();
        if (status != StatusCodes.Status101SwitchingProtocols || upgrade is not { IsUpgradableRequest: true })
        {
            context.Response.StatusCode = status == StatusCodes.Status101SwitchingProtocols ? StatusCodes.Status502BadGateway : status;
            return;
        }

        context.Response.Headers.Upgrade = DataConnection.UpgradeProtocol;
        context.Response.Headers.Connection = "Upgrade";
        var agent = await upgrade.UpgradeAsync();
        await DataForwarder.RelayAsync(agent, target, aborted);
    }
}
