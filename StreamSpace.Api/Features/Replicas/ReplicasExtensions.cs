namespace StreamSpace.Api.Features.Replicas;

public static class ReplicasExtensions
{
    public static IHostApplicationBuilder AddStreamSpaceReplicas(this IHostApplicationBuilder builder)
    {
        builder.Services.AddSingleton<ReplicaIdentity>();
        builder.Services.AddSingleton<ReplicaRegistry>();
        builder.Services.AddSingleton<IReplicaDirectory>(services => services.GetRequiredService<ReplicaRegistry>());
        builder.Services.AddHostedService(services => services.GetRequiredService<ReplicaRegistry>());
        builder.Services.AddSingleton<ReplicaDrain>();
        builder.Services.AddSingleton<IReplicaDrain>(services => services.GetRequiredService<ReplicaDrain>());
        builder.Services.AddHostedService(services => services.GetRequiredService<ReplicaDrain>());
        builder.Services.AddHealthChecks().AddCheck<ReplicaDrain>("replica");
        return builder;
    }
}
