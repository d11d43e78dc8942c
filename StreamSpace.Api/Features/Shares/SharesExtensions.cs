using StreamSpace.Api.Features.Sessions.Viewers;

namespace StreamSpace.Api.Features.Shares;

public static class SharesExtensions
{
    public static IHostApplicationBuilder AddStreamSpaceShares(this IHostApplicationBuilder builder)
    {
        builder.Services.AddSingleton<ShareStore>();
        builder.Services.AddSingleton<ShareAccess>();
        builder.Services.AddSingleton<IShareStatus>(sp => sp.GetRequiredService<ShareAccess>());
        return builder;
    }
}
