using System.Globalization;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using StreamSpace.Api.Features.Auth.Oidc;
using StreamSpace.Api.Features.Users;
using StreamSpace.Api.Infrastructure;
using StreamSpace.Api.Infrastructure.Database;

namespace StreamSpace.Api.Features.Auth;

public static class AuthExtensions
{
    public static IHostApplicationBuilder AddStreamSpaceAuth(this IHostApplicationBuilder builder, ApiSettings settings)
    {
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddSingleton<TokenIssuer>();
        builder.Services.AddSingleton<FailureWindows>();
        builder.Services.AddSingleton<IFailureWindows, PostgresFailureWindows>();
        builder.Services.AddSingleton<LoginThrottle>();
        builder.Services.AddMemoryCache();
        builder.Services.AddSingleton<ActiveUserCheck>();
        builder.Services.AddSingleton<IDatabaseNotificationHandler>(sp => sp.GetRequiredService<ActiveUserCheck>());
        builder.Services.AddSingleton<SignIns>();
        builder.Services.AddSingleton<IUserAccessChanges, UserAccessChanges>();
        builder.AddStreamSpaceOidc();

        builder.Services.AddAuthentication(JwtBearerDefaults.AuthenticationScheme)
            .AddJwtBearer(JwtBearerDefaults.AuthenticationScheme, _ => { });
        // Configured with the services, so token lifetimes are checked against the registered TimeProvider.
        builder.Services.AddOptions<JwtBearerOptions>(JwtBearerDefaults.AuthenticationScheme)
            .Configure<TimeProvider>((jwt, time) =>
            {
                jwt.MapInboundClaims = false;
                jwt.TokenValidationParameters = TokenIssuer.ValidationParameters(settings, time);
                jwt.Events = new JwtBearerEvents
                {
                    OnTokenValidated = async context =>
                    {
                        var check = context.HttpContext.RequestServices.GetRequiredService<ActiveUserCheck>();
                        var rejection = await check.RejectionAsync(context.Principal!, context.HttpContext.RequestAborted);
                        if (rejection is not null)
                        {
                            context.Fail(rejection);
                        }
                    },
                };
            });
        builder.Services.AddAuthorization();

        return builder;
    }

    public static WebApplication UseStreamSpaceAuth(this WebApplication app)
    {
        app.UseAuthentication();
        app.UseAuthorization();
        return app;
    }

    /// <summary>The 429 that every failure limit answers with, saying in Retry-After when to try again.</summary>
    internal static IResult TooManyAttempts(string title, TimeSpan retryAfter)
    {
        var seconds = Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds));
        return new RetryAfterResult(seconds, TypedResults.Problem(
            title: title,
            detail: $"Try again in {seconds} seconds.",
            statusCode: StatusCodes.Status429TooManyRequests));
    }

    private sealed class RetryAfterResult(int seconds, IResult inner) : IResult
    {
        public Task ExecuteAsync(HttpContext httpContext)
        {
            httpContext.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
            return inner.ExecuteAsync(httpContext);
        }
    }
}
