using FastEndpoints;
using StreamSpace.Api.Features.Audit;
using StreamSpace.Api.Features.Auth;
using StreamSpace.Api.Infrastructure;

namespace StreamSpace.Api.Features.Templates.Delete;

public sealed record DeleteTemplateRequest(string Name);

public sealed class DeleteTemplateEndpoint(TemplateStore templates) : Endpoint<DeleteTemplateRequest>
{
    public override void Configure()
    {
        Delete("templates/{name}");
        Roles(UserRoles.Admin);
        Summary(s => s.Summary = "Removes a template (admin only); its sessions keep running.");
    }

    public override async Task HandleAsync(DeleteTemplateRequest request, CancellationToken cancellationToken)
    {
        if (!await templates.DeleteAsync(Actor.From(User), request.Name, cancellationToken))
        {
            await Send.ResultAsync(ApiProblem.NotFound($"No template is named '{request.Name}'."));
            return;
        }

        await Send.NoContentAsync(cancellationToken);
    }
}
