using FastEndpoints;
using StreamSpace.Api.Features.Auth;
using StreamSpace.Api.Features.Groups;
using StreamSpace.Api.Infrastructure;

namespace StreamSpace.Api.Features.Templates.Get;

public sealed record GetTemplateRequest(string Name);

public sealed class GetTemplateEndpoint(TemplateStore templates, IUserGroups groups) : Endpoint<GetTemplateRequest, TemplateBody>
{
    public override void Configure()
    {
        Get("templates/{name}");
        Summary(s => s.Summary = "One template.");
    }

    public override async Task HandleAsync(GetTemplateRequest request, CancellationToken cancellationToken)
    {
        // A template outside the user's catalog does not exist for them, as in the list.
        if (await templates.GetAsync(request.Name, cancellationToken) is { } template
            && !(await groups.ClosedTemplatesAsync(User.RequiredUserId(), cancellationToken)).Contains(template.Name))
        {
            await Send.OkAsync(template.ToBody(withEnvValues: User.IsAdmin()), cancellationToken);
            return;
        }

        await Send.ResultAsync(ApiProblem.NotFound($"No template is named '{request.Name}'."));
    }
}
