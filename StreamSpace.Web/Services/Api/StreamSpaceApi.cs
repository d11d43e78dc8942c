using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Polly;
using StreamSpace.Contracts.Api;

namespace StreamSpace.Web.Services.Api;

/// <summary>
/// Sends requests to the API and turns every answer, or the lack of one, into an <see cref="ApiResult{T}"/>.
/// It attaches no credentials: calls for the signed-in user go through <see cref="ApiSession"/>.
/// </summary>
public sealed class StreamSpaceApi(IHttpClientFactory httpClients, TimeProvider time, ILogger<StreamSpaceApi> logger)
{
    public async Task<ApiResult<T>> SendAsync<T>(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        var client = httpClients.CreateClient(ApiClientExtensions.HttpClientName);
        try
        {
            using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
            if (!response.IsSuccessStatusCode)
            {
                var problem = await ReadProblemAsync(response, cancellationToken);
                if (problem.IsUnreachable)
                {
                    logger.LogWarning("The StreamSpace API answered {Method} {Path} with {Status}: {Title}.",
                        request.Method, request.RequestUri, problem.Status, problem.Title);
                }

                return ApiResult<T>.Failure(problem);
            }

            if (response.StatusCode == HttpStatusCode.NoContent || response.Content.Headers.ContentLength == 0)
            {
                return ApiResult<T>.Success(default);
            }

            return ApiResult<T>.Success(await response.Content.ReadFromJsonAsync<T>(ApiJson.Options, cancellationToken));
        }
        catch (Exception e) when (IsNoAnswer(e, cancellationToken))
        {
            logger.LogWarning(e, "The StreamSpace API did not answer {Method} {Path}.", request.Method, request.RequestUri);
            return ApiResult<T>.Failure(ApiError.Unreachable);
        }
    }

    /// <summary>
    /// Connection refused, name not resolved, a timeout or an open circuit breaker.
    /// A cancellation the caller asked for (the user left the page) is not one: it propagates.
    /// </summary>
    private static bool IsNoAnswer(Exception e, CancellationToken cancellationToken) => e switch
    {
        HttpRequestException or ExecutionRejectedException => true,
        OperationCanceledException => !cancellationToken.IsCancellationRequested,
        _ => false,
    };

    private async Task<ApiError> ReadProblemAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        var status = (int)response.StatusCode;
        var retryAfter = RetryAfter(response);
        var mediaType = response.Content.Headers.ContentType?.MediaType;
        if (mediaType is not ("application/problem+json" or "application/json"))
        {
            return new ApiError(status, response.ReasonPhrase, RetryAfter: retryAfter);
        }

        try
        {
            var body = await response.Content.ReadFromJsonAsync<ProblemBody>(ApiJson.Options, cancellationToken);
            return new ApiError(status, body?.Title ?? response.ReasonPhrase, body?.Detail, retryAfter);
        }
        catch (JsonException)
        {
            // A proxy's error page claiming to be JSON: the status alone still says what happened.
            return new ApiError(status, response.ReasonPhrase, RetryAfter: retryAfter);
        }
    }

    /// <summary>Retry-After is either a number of seconds (what the API sends) or an HTTP date.</summary>
    private TimeSpan? RetryAfter(HttpResponseMessage response) => response.Headers.RetryAfter switch
    {
        { Delta: { } delta } => delta,
        { Date: { } date } => date > time.GetUtcNow() ? date - time.GetUtcNow() : TimeSpan.Zero,
        _ => null,
    };

    private sealed record ProblemBody(string? Title, string? Detail);
}
