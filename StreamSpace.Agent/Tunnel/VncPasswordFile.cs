using System.Security.Cryptography;

namespace StreamSpace.Agent.Tunnel;

/// <summary>
/// A session's VNC passwords and TigerVNC's password file for them (what <c>-PasswordFile</c> reads and <c>vncpasswd -f</c>
/// writes): the 8 bytes of the full password, then the 8 of the view-only one (a viewer signed in with it sees the
/// desktop, and Xvnc ignores its keys, pointer, clipboard and resizes), each DES-encrypted under a key every VNC implementation knows. That hides nothing; the
/// Secret's RBAC protects it. The agent writes the file itself because a password typed through vncpasswd is text
/// cut at 8 characters, and VNC authentication can use 8 arbitrary bytes.
/// </summary>
public static class VncPasswordFile
{
    /// <summary>VNC authentication keys DES with the password's first 8 bytes; the rest never counts.</summary>
    public const int PasswordLength = 8;

    /// <summary>
    /// VNC's fixed obfuscation key {23,82,107,6,35,78,88,7}. VNC's DES takes each key byte's bits from the low end, the
    /// reverse of standard DES, so the bytes are bit-reversed here (as the challenge key in RfbBridge is).
    /// </summary>
    private static readonly byte[] ObfuscationKey = [.. new byte[] { 23, 82, 107, 6, 35, 78, 88, 7 }.Select(ReverseBits)];

    /// <summary>
    /// 8 bytes from the cryptographic generator, none zero: Xvnc reads the password back as a C string, so a zero byte
    /// would end it early (and a leading one would leave it empty, which Xvnc refuses). 255 values a byte make almost 64 bits,
    /// more than DES's 56 can use. A password that makes a weak DES key is drawn again: .NET refuses to key DES with it,
    /// so the tunnel could never answer the challenge.
    /// </summary>
    public static byte[] NewPassword()
    {
        while (true)
        {
            var password = new byte[PasswordLength];
            for (var i = 0; i < password.Length; i++)
            {
                password[i] = (byte)RandomNumberGenerator.GetInt32(1, 256);
            }

            var key = password.Select(ReverseBits).ToArray();
            if (!DES.IsWeakKey(key) && !DES.IsSemiWeakKey(key))
            {
                return password;
            }
        }
    }

    /// <summary>
    /// A view-only password that is not the same DES key as <paramref name="password"/>: with the same key Xvnc would grant
    /// full control. VNC's DES ignores one bit of each byte (bit 7 of the password byte, the parity bit once the bits are
    /// reversed), so the passwords are compared without it.
    /// </summary>
    public static byte[] NewViewOnlyPassword(ReadOnlySpan<byte> password)
    {
        var full = password.ToArray();
        while (true)
        {
            var viewOnly = NewPassword();
            if (!viewOnly.Select(b => b & 0x7F).SequenceEqual(full.Select(b => b & 0x7F)))
            {
                return viewOnly;
            }
        }
    }

    /// <summary>The password file's content for a password of exactly 8 bytes and, when given, a view-only password of 8.</summary>
    public static byte[] Write(ReadOnlySpan<byte> password, ReadOnlySpan<byte> viewOnlyPassword = default)
    {
        CheckLength(password, nameof(password));
        using var des = Obfuscator();
        if (viewOnlyPassword.IsEmpty)
        {
            return des.EncryptEcb(password, PaddingMode.None);
        }

        CheckLength(viewOnlyPassword, nameof(viewOnlyPassword));
        return [.. des.EncryptEcb(password, PaddingMode.None), .. des.EncryptEcb(viewOnlyPassword, PaddingMode.None)];
    }

    /// <summary>The full password in a password file.</summary>
    public static byte[] Read(ReadOnlySpan<byte> file)
    {
        if (file.Length < PasswordLength)
        {
            throw new InvalidDataException($"a VNC password file holds at least {PasswordLength} bytes, this one {file.Length}");
        }

        using var des = Obfuscator();
        return des.DecryptEcb(file[..PasswordLength], PaddingMode.None);
    }

    /// <summary>The view-only password in a password file; null for a file with none (written before sharing existed).</summary>
    public static byte[]? ReadViewOnly(ReadOnlySpan<byte> file)
    {
        if (file.Length < 2 * PasswordLength)
        {
            return null;
        }

        using var des = Obfuscator();
        return des.DecryptEcb(file[PasswordLength..(2 * PasswordLength)], PaddingMode.None);
    }

    private static void CheckLength(ReadOnlySpan<byte> password, string name)
    {
        if (password.Length != PasswordLength)
        {
            throw new ArgumentException($"a VNC password is exactly {PasswordLength} bytes, not {password.Length}", name);
        }
    }

    private static DES Obfuscator()
    {
        var des = DES.Create();
        des.Key = ObfuscationKey;
        return des;
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
}
