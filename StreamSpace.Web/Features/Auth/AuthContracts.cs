namespace StreamSpace.Web.Features.Auth;

/// <summary>The body of <c>POST /api/v1/auth/login</c>.</summary>
public sealed record LoginRequest(string Username, string Password);

/// <summary>The answer to a successful login.</summary>
public sealed record LoginResponse(string Token, DateTimeOffset ExpiresAt, ApiUser User);

/// <summary>A user as the API describes it, e.g. from <c>GET /api/v1/auth/me</c>.</summary>
public sealed record ApiUser(Guid Id, string Username, string Role);
