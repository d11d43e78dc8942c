using System.Security.Cryptography;
using System.Text;
using Dapper;
using Npgsql;

namespace StreamSpace.Api.Features.Auth.Oidc;

/// <summary>
/// Makes each ID token good for one exchange: its nonce (the web UI draws a new one for every sign-in) is recorded
/// under the issuer, and a second exchange of the same token is refused on every API replica.
/// </summary>
public sealed class UsedNonces(NpgsqlDataSource dataSource)
{
    /// <summary>True the first time (issuer, nonce) is used, false after.</summary>
    public async Task<bool> TryUseAsync(string issuer, string nonce, CancellationToken cancellationToken)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(issuer + "\n" + nonce));
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        // Rows past the tokens' freshness window guard nothing: clearing them here keeps the table small without a job.
        var inserted = await connection.ExecuteScalarAsync<int?>(new CommandDefinition(
            """
            WITH expired AS (DELETE FROM oidc_used_nonces WHERE expires_at < now())
            INSERT INTO oidc_used_nonces (nonce_hash, expires_at) VALUES (@hash, now() + @keep)
            ON CONFLICT (nonce_hash) DO NOTHING
            RETURNING 1
            """, new { hash, keep = ProviderTokens.MaximumAge * 2 }, cancellationToken: cancellationToken));
        return inserted is not null;
    }
}
