using System.Collections.Concurrent;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Authorization.Infrastructure;

namespace StreamSpace.Api.Features.Tokens;

/// <summary>
/// The one place API token scopes are enforced, for every endpoint, from its metadata: an admin endpoint (one whose
/// authorization requires the admin role) needs <c>admin</c>; an endpoint marked <see cref="ApiTokenAccess"/> needs
/// its scope or refuses tokens; any other GET or HEAD is reading, which every token may do; anything else (changing a
/// password, refreshing into a JWT, signing out, uploading files, preferences) is not open to tokens. Runs after
/// authorization, so the role checks have already held.
/// </summary>
public sealed class ApiTokenScopeGate(RequestDelegate next, IAuthorizationPolicyProvider policies)
{
    private readonly ConcurrentDictionary<(Endpoint, bool IsRead), string?> requiredScopes = new();

    private const string ReadOnly = ApiTokenScopes.Read;

    public async Task InvokeAsync(HttpContext context)
    {
        if (context.User.ApiTokenId() is null || context.GetEndpoint() is not { } endpoint)
        {
            await next(context);
            return;
        }

        var scope = await RequiredScopeAsync(endpoint, context.Request.Method);
        if (scope == ReadOnly || (scope is not null && context.User.HasScope(scope)))
        {
            await next(context);
            return;
        }

        var detail = scope is null
            ? "API tokens cannot call this endpoint; sign in with a password for it."
            : $"This needs an API token with the '{scope}' scope.";
        await TypedResults.Problem(title: "The API token's scope does not allow this.", detail: detail, statusCode: StatusCodes.Status403Forbidden)
            .ExecuteAsync(context);
    }

    /// <summary><see cref="ReadOnly"/> when any token may, a scope when that one is needed, null when no token may.</summary>
    private async ValueTask<string?> RequiredScopeAsync(Endpoint endpoint, string method)
    {
        var isRead = HttpMethods.IsGet(method) || HttpMethods.IsHead(method);
        if (requiredScopes.TryGetValue((endpoint, isRead), out var known))
        {
            return known;
        }

        string? scope;
        if (endpoint.Metadata.GetMetadata<ApiTokenAccess>() is { } access)
        {
            scope = access.Scope;
        }
        else if (await IsAdminEndpointAsync(endpoint))
        {
            scope = ApiTokenScopes.Admin;
        }
        else
        {
            scope = isRead ? ReadOnly : null;
        }

        requiredScopes[(endpoint, isRead)] = scope;
        return scope;
    }

    private async Task<bool> IsAdminEndpointAsync(Endpoint endpoint)
    {
        var policy = await AuthorizationPolicy.CombineAsync(policies, endpoint.Metadata.GetOrderedMetadata<IAuthorizeData>(),
            endpoint.Metadata.GetOrderedMetadata<AuthorizationPolicy>());
        return policy?.Requirements.OfType<RolesAuthorizationRequirement>().Any(r => r.AllowedRoles.Contains(UserRoles.Admin)) == true;
    }
}
