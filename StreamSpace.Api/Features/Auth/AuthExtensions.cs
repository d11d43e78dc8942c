using System.Globalization;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Identity;
using StreamSpace.Api.Features.Users;
using StreamSpace.Api.Infrastructure.Database;

namespace StreamSpace.Api.Features.Auth;

public static class AuthExtensions
{
    /// <summary>The rate-limiter policy that limits login attempts per client address.</summary>
    public const string LoginPolicy = "login";

    public static IHostApplicationBuilder AddStreamSpaceAuth(this IHostApplicationBuilder builder, ApiSettings settings)
    {
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddSingleton<TokenIssuer>();
        builder.Services.AddSingleton<LoginThrottle>();
        builder.Services.AddSingleton<IPasswordHasher<UserAccount>, PasswordHasher<UserAccount>>();
        builder.Services.AddMemoryCache();
        builder.Services.AddSingleton<ActiveUserCheck>();
        builder.Services.AddSingleton<IDatabaseNotificationHandler>(sp => sp.GetRequiredService<ActiveUserCheck>());
        builder.Services.AddSingleton<SignIns>();

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

        builder.Services.AddRateLimiter(limiter =>
        {
            limiter.AddPolicy(LoginPolicy, context => RateLimitPartition.GetFixedWindowLimiter(
                context.Connection.RemoteIpAddress?.ToString() ?? "unknown",
                _ => LoginWindow(settings)));
            limiter.OnRejected = async (context, cancellationToken) =>
            {
                var retryAfter = context.Lease.TryGetMetadata(MetadataName.RetryAfter, out var wait) ? wait : TimeSpan.FromMinutes(1);
                await TooManyAttempts(retryAfter).ExecuteAsync(context.HttpContext);
            };
        });

        return builder;
    }

    public static WebApplication UseStreamSpaceAuth(this WebApplication app)
    {
        app.UseAuthentication();
        app.UseAuthorization();
        app.UseRateLimiter();
        return app;
    }

    internal static FixedWindowRateLimiterOptions LoginWindow(ApiSettings settings) => new()
    {
        PermitLimit = settings.LoginAttemptsPerMinute,
        Window = TimeSpan.FromMinutes(1),
        QueueLimit = 0,
    };

    /// <summary>The 429 that both login limits answer with.</summary>
    internal static IResult TooManyAttempts(TimeSpan retryAfter)
    {
        var seconds = Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds));
        return new RetryAfterResult(seconds, TypedResults.Problem(
            title: "Too many login attempts.",
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
