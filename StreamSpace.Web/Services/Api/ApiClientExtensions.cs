using System.Net;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Http.Resilience;

namespace StreamSpace.Web.Services.Api;

public static class ApiClientExtensions
{
    /// <summary>The named HttpClient that reaches the API; use <see cref="StreamSpaceApi"/> or <see cref="ApiSession"/> rather than this directly.</summary>
    public const string HttpClientName = "streamspace-api";

    /// <summary>
    /// For the long-lived server-sent events stream: no resilience handler, whose timeouts would cut a stream that is
    /// meant to stay open, and whose retries make no sense for it (the reader reconnects itself).
    /// </summary>
    public const string StreamingHttpClientName = "streamspace-api-stream";

    /// <summary>
    /// Resolved by service discovery from <c>services__api__http__0</c>, which the AppHost and the Helm chart both set.
    /// In Kubernetes without that variable, the Service name <c>api</c> still resolves through DNS.
    /// </summary>
    public static readonly Uri BaseAddress = new("http://api");

    public static IHostApplicationBuilder AddStreamSpaceApi(this IHostApplicationBuilder builder)
    {
        // Replaces the service defaults' handler: a retried POST could sign in twice or start two sessions,
        // and retrying a 429 would spend the user's login attempts while they wait.
#pragma warning disable EXTEXP0001 // RemoveAllResilienceHandlers is experimental, and the supported way to replace the defaults' handler for one client.
        builder.Services.AddHttpClient(HttpClientName, client => client.BaseAddress = BaseAddress)
            .RemoveAllResilienceHandlers()
            .AddStandardResilienceHandler(options =>
            {
                options.Retry.ShouldHandle = args => ValueTask.FromResult(
                    args.Outcome.Result?.StatusCode != HttpStatusCode.TooManyRequests &&
                    HttpClientResiliencePredicates.IsTransient(args.Outcome));
                // After ShouldHandle: it wraps the predicate that is set when it is called.
                options.Retry.DisableForUnsafeHttpMethods();
            });
        builder.Services.AddHttpClient(StreamingHttpClientName, client =>
            {
                client.BaseAddress = BaseAddress;
                client.Timeout = Timeout.InfiniteTimeSpan;
            })
            .RemoveAllResilienceHandlers();
#pragma warning restore EXTEXP0001

        builder.Services.AddHttpContextAccessor();
        builder.Services.TryAddSingleton(TimeProvider.System);
        builder.Services.AddSingleton<StreamSpaceApi>();
        builder.Services.AddScoped<ApiSession>();
        return builder;
    }
}
