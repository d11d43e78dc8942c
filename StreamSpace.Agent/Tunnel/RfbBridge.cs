using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace StreamSpace.Agent.Tunnel;

/// <summary>
/// Joins a viewer to a VNC server that wants a password the viewer must never see: the agent answers the
/// server's VNC-auth challenge itself and offers the viewer security type None. After both handshakes the two
/// sides stand at ClientInit, and bytes pass through untouched.
/// </summary>
public static class RfbBridge
{
    private static readonly byte[] Version38 = "RFB 003.008\n"u8.ToArray();
    private const byte SecurityNone = 1;
    private const byte SecurityVncAuth = 2;

    /// <summary>Authenticates to the VNC server; throws with the server's reason when it refuses.</summary>
    public static async Task AuthenticateToServerAsync(Stream server, string password, CancellationToken cancellationToken)
    {
        var version = new byte[12];
        await server.ReadExactlyAsync(version, cancellationToken);
        if (!Encoding.ASCII.GetString(version).StartsWith("RFB 003.", StringComparison.Ordinal))
        {
            throw new InvalidDataException("the VNC port did not answer with an RFB banner");
        }

        await server.WriteAsync(Version38, cancellationToken);
        var count = await ReadByteAsync(server, cancellationToken);
        if (count == 0)
        {
            throw new InvalidDataException($"the VNC server refused the connection: {await ReadReasonAsync(server, cancellationToken)}");
        }

        var types = new byte[count];
        await server.ReadExactlyAsync(types, cancellationToken);
        if (!types.Contains(SecurityVncAuth))
        {
            throw new InvalidDataException("the VNC server does not offer VNC password authentication");
        }

        await server.WriteAsync(new[] { SecurityVncAuth }, cancellationToken);
        var challenge = new byte[16];
        await server.ReadExactlyAsync(challenge, cancellationToken);
        await server.WriteAsync(EncryptChallenge(challenge, password), cancellationToken);

        var result = new byte[4];
        await server.ReadExactlyAsync(result, cancellationToken);
        if (BinaryPrimitives.ReadUInt32BigEndian(result) != 0)
        {
            throw new InvalidDataException($"the VNC server rejected the session password: {await ReadReasonAsync(server, cancellationToken)}");
        }
    }

    /// <summary>Plays the server's part of the handshake towards the viewer, offering no authentication.</summary>
    public static async Task GreetViewerAsync(Stream viewer, CancellationToken cancellationToken)
    {
        await viewer.WriteAsync(Version38, cancellationToken);
        var version = new byte[12];
        await viewer.ReadExactlyAsync(version, cancellationToken);
        if (!Encoding.ASCII.GetString(version).StartsWith("RFB 003.00", StringComparison.Ordinal))
        {
            throw new InvalidDataException("the viewer did not speak RFB");
        }

        await viewer.WriteAsync(new byte[] { 1, SecurityNone }, cancellationToken);
        if (await ReadByteAsync(viewer, cancellationToken) != SecurityNone)
        {
            throw new InvalidDataException("the viewer chose a security type that was not offered");
        }

        await viewer.WriteAsync(new byte[4], cancellationToken); // SecurityResult: OK
    }

    /// <summary>VNC authentication: DES-ECB of the challenge, keyed by the password with each byte's bits reversed.</summary>
    public static byte[] EncryptChallenge(byte[] challenge, string password)
    {
        var key = new byte[8];
        var bytes = Encoding.Latin1.GetBytes(password);
        for (var i = 0; i < key.Length && i < bytes.Length; i++)
        {
            key[i] = ReverseBits(bytes[i]);
        }

        using var des = DES.Create();
        des.Key = key;
        return des.EncryptEcb(challenge, PaddingMode.None);
    }

    private static byte ReverseBits(byte value)
    {
        byte result = 0;
        for (var i = 0; i < 8; i++)
        {
            result = (byte)((result << 1) | ((value >> i) & 1));
        }

        return result;
    }

    private static async Task<byte> ReadByteAsync(Stream stream, CancellationToken cancellationToken)
    {
        var one = new byte[1];
        await stream.ReadExactlyAsync(one, cancellationToken);
        return one[0];
    }

    private static async Task<string> ReadReasonAsync(Stream stream, CancellationToken cancellationToken)
    {
        try
        {
            var length = new byte[4];
            await stream.ReadExactlyAsync(length, cancellationToken);
            var reason = new byte[Math.Min(BinaryPrimitives.ReadUInt32BigEndian(length), 4096)];
            await stream.ReadExactlyAsync(reason, cancellationToken);
            return Encoding.UTF8.GetString(reason);
        }
        catch (EndOfStreamException)
        {
            return "no reason given";
        }
    }
}
