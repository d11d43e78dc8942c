namespace StreamSpace.Contracts.Tunnel;

/// <summary>
/// The data connection of protocol version 2: the agent dials the replica that waits for a viewer, sends an HTTP/1.1
/// Upgrade with the stream's single-use token, and after <c>101</c> the connection carries the viewer's RFB bytes
/// both ways, unframed. The agent and the API both read these names from here.
/// </summary>
public static class DataConnection
{
    /// <summary>The path on the API's HTTP port, for agents that reach only its public URL.</summary>
    public const string Path = "/agent/data";

    /// <summary>The protocol named in <c>Upgrade</c>: raw RFB after the 101.</summary>
    public const string UpgradeProtocol = "streamspace-vnc/2";

    /// <summary>Data tokens start with this; VNC tickets never do, so neither can stand in for the other.</summary>
    public const string TokenPrefix = "dt1.";

    public const string SessionIdHeader = "X-StreamSpace-Session-Id";

    /// <summary>
    /// On a request that reports a failure instead of opening the stream: why the agent could not reach the session's
    /// VNC server, percent-encoded, at most <see cref="MaxErrorBytes"/> bytes. The answer is 204.
    /// </summary>
    public const string StreamErrorHeader = "X-StreamSpace-Stream-Error";

    public const int MaxErrorBytes = 200;

    /// <summary>The largest request or response head either side reads; a longer one is refused.</summary>
    public const int MaxHeadBytes = 8 * 1024;

    /// <summary>How long a token stays valid after the open was sent.</summary>
    public static readonly TimeSpan TokenLifetime = TimeSpan.FromSeconds(10);

    /// <summary>Percent-encodes a failure reason for <see cref="StreamErrorHeader"/>, cut to <see cref="MaxErrorBytes"/>.</summary>
    public static string EncodeError(string reason)
    {
        var encoded = Uri.EscapeDataString(reason);
        while (encoded.Length > MaxErrorBytes)
        {
            reason = reason[..(reason.Length * 3 / 4)];
            encoded = Uri.EscapeDataString(reason);
        }

        return encoded;
    }
}
