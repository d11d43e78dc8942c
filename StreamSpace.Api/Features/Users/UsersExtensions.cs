using Microsoft.AspNetCore.Identity;
using StreamSpace.Api.Infrastructure.Database;

namespace StreamSpace.Api.Features.Users;

public static class UsersExtensions
{
    public static IHostApplicationBuilder AddStreamSpaceUsers(this IHostApplicationBuilder builder)
    {
        builder.Services.AddSingleton<IPasswordHasher<UserAccount>, PasswordHasher<UserAccount>>();
        builder.Services.AddSingleton<UserStore>();
        builder.Services.AddSingleton<IUserAccounts>(sp => sp.GetRequiredService<UserStore>());
        builder.Services.AddSingleton<IProviderUsers>(sp => sp.GetRequiredService<UserStore>());
        builder.Services.AddSingleton<IAfterMigration, AdminBootstrap>();
        return builder;
    }
}
