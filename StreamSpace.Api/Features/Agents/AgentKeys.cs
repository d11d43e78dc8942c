using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;

namespace StreamSpace.Api.Features.Agents;

/// <summary>
/// Agent keys are 256 random bits. Only their SHA-256 is stored: a key has full entropy, so a slow password hash
/// would add nothing but latency to every agent connect.
/// </summary>
public static class AgentKeys
{
    public const string Prefix = "ssak_";
    public const int MinimumLength = 32;

    public static string Generate() => Prefix + Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(32));

    public static string Hash(string key) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)));

    /// <summary>Compares a presented key's hash with the stored one in constant time.</summary>
    public static bool HashesMatch(string keyHash, string storedHash) =>
        CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(keyHash), Encoding.ASCII.GetBytes(storedHash));
}
