using System.Diagnostics.CodeAnalysis;
using System.Net;

namespace StreamSpace.Web.Services.Api;

/// <summary>Why an API call did not succeed, in terms a page can show. <see cref="Status"/> is null when no answer came.</summary>
public sealed record ApiError(int? Status, string? Title = null, string? Detail = null, TimeSpan? RetryAfter = null)
{
    public const string UnreachableMessage = "StreamSpace API is unreachable; try again shortly.";

    /// <summary>No answer, or a server error: either way the user can only wait and retry.</summary>
    public static readonly ApiError Unreachable = new(Status: null);

    /// <summary>The web session holds no API token, e.g. the page was rendered for a signed-out user.</summary>
    public static readonly ApiError NotSignedIn = new((int)HttpStatusCode.Unauthorized, "Not signed in.");

    public bool IsUnreachable => Status is null or >= 500;

    /// <summary>The API refused the token (expired, user disabled or role changed): the user must log in again.</summary>
    public bool IsSessionExpired => Status == (int)HttpStatusCode.Unauthorized;

    public bool IsRateLimited => Status == (int)HttpStatusCode.TooManyRequests;

    /// <summary>A sentence for the user; pages with better wording for a status (like the login page) map it themselves.</summary>
    public string Message => IsUnreachable ? UnreachableMessage : Detail ?? Title ?? $"The StreamSpace API refused the request ({Status}).";
}

/// <summary>The outcome of an API call: a value, or a problem to show. API calls never throw for HTTP or network failures.</summary>
public sealed class ApiResult<T>
{
    private ApiResult(T? value, ApiError? problem)
    {
        Value = value;
        Problem = problem;
    }

    /// <summary>The response body; default for a success without one (204).</summary>
    public T? Value { get; }

    public ApiError? Problem { get; }

    [MemberNotNullWhen(false, nameof(Problem))]
    public bool Succeeded => Problem is null;

    public static ApiResult<T> Success(T? value) => new(value, null);

    public static ApiResult<T> Failure(ApiError problem) => new(default, problem);
}
