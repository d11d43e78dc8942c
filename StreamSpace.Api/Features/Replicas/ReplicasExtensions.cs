namespace StreamSpace.Api.Features.Replicas;

public static class ReplicasExtensions
{
    public static IHostApplicationBuilder AddStreamSpaceReplicas(this IHostApplicationBuilder builder)
    {
        builder.Services.AddSingleton<ReplicaIdentity>();
        return builder;
    }
}
