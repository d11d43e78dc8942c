using System.Net;
using System.Net.Sockets;

namespace StreamSpace.Tests.Infrastructure;

/// <summary>
/// Connections to the test API from another loopback address (the whole of 127.0.0.0/8 is loopback), so one test can
/// be two clients on two addresses, as per-address limits need.
/// </summary>
public static class FromAddress
{
    public static SocketsHttpHandler Handler(IPAddress local) => new()
    {
        ConnectCallback = async (context, cancellationToken) =>
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                socket.Bind(new IPEndPoint(local, 0));
                await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, context.DnsEndPoint.Port), cancellationToken);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        },
    };

    public static HttpClient Client(ApiFactory api, IPAddress local) => new(Handler(local)) { BaseAddress = api.BaseAddress };

    public static IPAddress Second { get; } = IPAddress.Parse("127.0.0.2");

    public static IPAddress Third { get; } = IPAddress.Parse("127.0.0.3");
}
