namespace StreamSpace.Api.Features.Tokens;

/// <summary>
/// Endpoint metadata saying what an API token needs beyond reading: <see cref="SessionControl"/> for the endpoints that
/// launch, stop, hibernate, wake or connect to a session (the <c>sessions</c> scope), <see cref="Refused"/> for those no
/// token may call whatever its scope (managing tokens). <see cref="ApiTokenScopeGate"/> reads it.
/// </summary>
public sealed class ApiTokenAccess
{
    public static readonly ApiTokenAccess SessionControl = new(ApiTokenScopes.Sessions);

    public static readonly ApiTokenAccess Refused = new(null);

    private ApiTokenAccess(string? scope) => Scope = scope;

    /// <summary>The scope the endpoint needs; null when no token may call it.</summary>
    public string? Scope { get; }
}
