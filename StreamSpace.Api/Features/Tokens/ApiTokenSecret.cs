using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;

namespace StreamSpace.Api.Features.Tokens;

/// <summary>Makes a token's secret and the forms it is kept and shown in.</summary>
public static class ApiTokenSecret
{
    private const int SecretBytes = 32;

    /// <summary>Characters after <see cref="ApiTokenScopes.TokenPrefix"/> that lists show, enough to tell tokens apart.</summary>
    private const int ShownCharacters = 6;

    /// <summary><c>ssp_</c> and 256 random bits in base64url (43 characters).</summary>
    public static string New() => ApiTokenScopes.TokenPrefix + Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(SecretBytes));

    /// <summary>
    /// SHA-256, not a slow password hash: the secret is 256 random bits, so there is nothing to guess and a slow hash
    /// would only cost every request time. A stolen table still gives no usable token.
    /// </summary>
    public static byte[] Hash(string token) => SHA256.HashData(Encoding.UTF8.GetBytes(token));

    public static string Prefix(string token) => token[..(ApiTokenScopes.TokenPrefix.Length + ShownCharacters)];

    public static bool LooksLikeToken(string? value) => value is not null && value.StartsWith(ApiTokenScopes.TokenPrefix, StringComparison.Ordinal);
}
