using FastEndpoints;
using StreamSpace.Api.Features.Audit;
using StreamSpace.Api.Features.Auth;
using StreamSpace.Api.Infrastructure;

namespace StreamSpace.Api.Features.Templates.Create;

public sealed class CreateTemplateEndpoint(TemplateStore templates) : Endpoint<TemplateBody, TemplateBody>
{
    public override void Configure()
    {
        Post("templates");
        Roles(UserRoles.Admin);
        Summary(s => s.Summary = "Adds a template (admin only).");
    }

    public override async Task HandleAsync(TemplateBody request, CancellationToken cancellationToken)
    {
        if (!await templates.SaveAsync(Actor.From(User), request, replace: false, cancellationToken))
        {
            await Send.ResultAsync(ApiProblem.Conflict($"A template named '{request.Name}' already exists."));
            return;
        }

        await Send.CreatedAtAsync<Get.GetTemplateEndpoint>(new { name = request.Name }, (await templates.GetAsync(request.Name, cancellationToken))!.ToBody(withEnvValues: true), cancellation: cancellationToken);
    }
}
