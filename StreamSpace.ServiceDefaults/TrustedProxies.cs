using IPNetwork = System.Net.IPNetwork;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.HttpOverrides;
using Microsoft.Extensions.DependencyInjection;
using StreamSpace.Settings;

namespace Microsoft.Extensions.Hosting;

/// <summary>
/// Which reverse proxies (the ingress controller, the web app in front of the API) are believed when they say, in
/// X-Forwarded-For and X-Forwarded-Proto, who the client is. Without it every login through a proxy would come from the
/// proxy's address and share one rate-limit bucket; believing anyone would let a client pick its own address.
/// </summary>
public sealed class TrustedProxySettings : IValidatedSettings
{
    [Setting("TRUSTED_PROXY_NETWORKS", Help = "comma-separated CIDR networks of reverse proxies whose X-Forwarded-For is believed, e.g. 10.0.0.0/8; loopback always is")]
    public string TrustedProxyNetworks { get; set; } = "";

    public IReadOnlyList<IPNetwork> Networks =>
        [.. TrustedProxyNetworks.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(IPNetwork.Parse)];

    public void Validate()
    {
        foreach (var network in TrustedProxyNetworks.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!IPNetwork.TryParse(network, out _))
            {
                throw new InvalidSettingException("TRUSTED_PROXY_NETWORKS", $"has an invalid network '{network}': expected CIDR networks such as 10.0.0.0/8,fd00::/8.");
            }
        }
    }
}

public static class TrustedProxyExtensions
{
    public static IHostApplicationBuilder AddTrustedProxies(this IHostApplicationBuilder builder)
    {
        var settings = SettingsBinder.Bind<TrustedProxySettings>(builder.Configuration);
        builder.Services.Configure<ForwardedHeadersOptions>(options =>
        {
            options.ForwardedHeaders = ForwardedHeaders.XForwardedFor | ForwardedHeaders.XForwardedProto;
            // Loopback stays trusted (the default), which is how the web app reaches the API on one machine.
            foreach (var network in settings.Networks)
            {
                options.KnownIPNetworks.Add(network);
            }
        });
        return builder;
    }

    /// <summary>First in the pipeline, so that rate limits and logs see the client's address.</summary>
    public static WebApplication UseTrustedProxies(this WebApplication app)
    {
        app.UseForwardedHeaders();
        return app;
    }
}
