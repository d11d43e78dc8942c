using System.Text.Json;
using FastEndpoints;
using FastEndpoints.Swagger;
using StreamSpace.Api.Features.Tokens;

namespace StreamSpace.Api.Infrastructure;

public static class EndpointsExtensions
{
    public const string RoutePrefix = "api/v1";

    public static IHostApplicationBuilder AddStreamSpaceEndpoints(this IHostApplicationBuilder builder)
    {
        builder.Services.AddFastEndpoints();
        builder.Services.SwaggerDocument(doc =>
        {
            doc.DocumentSettings = s =>
            {
                s.Title = "StreamSpace API";
                s.Version = "v1";
                s.DescribeApiTokens();
            };
            doc.ShortSchemaNames = true;
        });
        builder.Services.AddProblemDetails();
        // Results written outside FastEndpoints' serializer (TypedResults such as 202 Accepted) use the same snake_case.
        builder.Services.ConfigureHttpJsonOptions(json => json.SerializerOptions.PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower);
        return builder;
    }

    /// <summary>Every error a client can cause is answered with RFC 9457 problem details, never an empty body or a 500 page.</summary>
    public static WebApplication UseStreamSpaceErrors(this WebApplication app)
    {
        app.UseExceptionHandler();
        app.UseStatusCodePages();
        return app;
    }

    public static WebApplication MapStreamSpaceEndpoints(this WebApplication app)
    {
        app.UseFastEndpoints(config =>
        {
            config.Endpoints.RoutePrefix = RoutePrefix;
            // snake_case matches the columns and the names the troubleshooting guide's curl | jq examples use.
            config.Serializer.Options.PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower;
            var json = config.Serializer.Options;
            config.Serializer.RequestDeserializer = (request, type, context, cancellationToken) =>
                ReadBodyAsync(request, type, context?.Options ?? json, cancellationToken);
            config.Errors.UseProblemDetails();
        });
        app.UseSwaggerGen();
        return app;
    }

    /// <summary>
    /// Many HTTP clients send <c>Content-Type: application/json</c> on every request, a GET or an action POST included,
    /// with no body at all, an empty one (<c>Content-Length: 0</c>) or an empty chunked one. Each reads as <c>{}</c>, as
    /// if the client had sent no content type: the route and query bind as usual, and an endpoint that needs a body
    /// answers with its validation errors.
    /// </summary>
    private static async ValueTask<object?> ReadBodyAsync(HttpRequest request, Type type, JsonSerializerOptions options, CancellationToken cancellationToken) =>
        await IsEmptyAsync(request, cancellationToken)
            ? JsonSerializer.Deserialize("{}", type, options)
            : await request.ReadFromJsonAsync(type, options, cancellationToken);

    /// <summary>Whether the body holds nothing; it looks without consuming, so the body is still there to read.</summary>
    private static async Task<bool> IsEmptyAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        var read = await request.BodyReader.ReadAsync(cancellationToken);
        request.BodyReader.AdvanceTo(read.Buffer.Start);
        return read.Buffer.IsEmpty && read.IsCompleted;
    }
}
