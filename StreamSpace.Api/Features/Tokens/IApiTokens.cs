namespace StreamSpace.Api.Features.Tokens;

/// <summary>What other features need of API tokens: whether one still stands (see ActiveUserCheck).</summary>
public interface IApiTokens
{
    /// <summary>Why the token must be refused now (revoked, expired, gone), or null while it stands.</summary>
    Task<string?> RejectionAsync(Guid tokenId, CancellationToken cancellationToken);
}
