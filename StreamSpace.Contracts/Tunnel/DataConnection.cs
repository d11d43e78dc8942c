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

    /// <summary>
    /// Reads an HTTP/1.1 response head one byte at a time up to its blank line, so the first RFB byte after it stays in
    /// the socket, and returns its status code. Used by the agent and by a replica forwarding to another.
    /// </summary>
    public static async Task<int> ReadStatusAsync(Stream stream, CancellationToken cancellationToken)
    {
        var head = new byte[MaxHeadBytes];
        var length = 0;
        while (length < 4 || !head.AsSpan(length - 4, 4).SequenceEqual("\r\n\r\n"u8))
        {
            if (length == head.Length)
            {
                throw new IOException("the data connection's answer had no end");
            }

            if (await stream.ReadAsync(head.AsMemory(length, 1), cancellationToken) == 0)
            {
                throw new IOException("the replica closed the data connection before answering");
            }

            length++;
        }

        var statusLine = System.Text.Encoding.ASCII.GetString(head, 0, head.AsSpan(0, length).IndexOf("\r\n"u8)).Split(' ');
        return statusLine is [var version, var code, ..] && version.StartsWith("HTTP/1.", StringComparison.Ordinal) && int.TryParse(code, out var status)
            ? status
            : throw new IOException("the data connection's answer was not HTTP/1.1");
    }

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
