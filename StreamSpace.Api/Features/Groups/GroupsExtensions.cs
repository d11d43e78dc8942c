namespace StreamSpace.Api.Features.Groups;

public static class GroupsExtensions
{
    public static IHostApplicationBuilder AddStreamSpaceGroups(this IHostApplicationBuilder builder)
    {
        builder.Services.AddSingleton<GroupStore>();
        builder.Services.AddSingleton<IUserGroups>(sp => sp.GetRequiredService<GroupStore>());
        return builder;
    }
}
