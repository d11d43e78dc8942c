using FastEndpoints;
using StreamSpace.Api.Features.Audit;
using StreamSpace.Api.Features.Auth;
using StreamSpace.Api.Infrastructure;

namespace StreamSpace.Api.Features.Templates.Update;

/// <summary>Replaces a template; sessions already running keep the copy they started with.</summary>
public sealed class UpdateTemplateEndpoint(TemplateStore templates) : Endpoint<TemplateBody, TemplateBody>
{
    public override void Configure()
    {
        Put("templates/{name}");
        Roles(UserRoles.Admin);
        Summary(s => s.Summary = "Replaces a template (admin only).");
    }

    public override async Task HandleAsync(TemplateBody request, CancellationToken cancellationToken)
    {
        if (!await templates.SaveAsync(Actor.From(User), request, replace: true, cancellationToken))
        {
            await Send.ResultAsync(ApiProblem.NotFound($"No template is named '{request.Name}'."));
            return;
        }

        await Send.OkAsync((await templates.GetAsync(request.Name, cancellationToken))!.ToBody(withEnvValues: true), cancellationToken);
    }
}
