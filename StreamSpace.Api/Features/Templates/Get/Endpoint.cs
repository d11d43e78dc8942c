using FastEndpoints;
using StreamSpace.Api.Features.Auth;
using StreamSpace.Api.Infrastructure;

namespace StreamSpace.Api.Features.Templates.Get;

public sealed record GetTemplateRequest(string Name);

public sealed class GetTemplateEndpoint(TemplateStore templates) : Endpoint<GetTemplateRequest, TemplateBody>
{
    public override void Configure()
    {
        Get("templates/{name}");
        Summary(s => s.Summary = "One template.");
    }

    public override async Task HandleAsync(GetTemplateRequest request, CancellationToken cancellationToken)
    {
        if (await templates.GetAsync(request.Name, cancellationToken) is { } template)
        {
            await Send.OkAsync(template.ToBody(withEnvValues: User.IsAdmin()), cancellationToken);
            return;
        }

        await Send.ResultAsync(ApiProblem.NotFound($"No template is named '{request.Name}'."));
    }
}
