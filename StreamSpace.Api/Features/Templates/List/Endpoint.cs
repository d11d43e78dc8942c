using FastEndpoints;
using StreamSpace.Api.Features.Auth;
using StreamSpace.Api.Features.Groups;

namespace StreamSpace.Api.Features.Templates.List;

/// <summary>The catalog as the user may launch it: templates limited to groups the user is in none of are left out.</summary>
public sealed class ListTemplatesEndpoint(TemplateStore templates, IUserGroups groups) : EndpointWithoutRequest<IReadOnlyList<TemplateBody>>
{
    public override void Configure()
    {
        Get("templates");
        Summary(s => s.Summary = "The template catalog: the templates the signed-in user may launch.");
    }

    public override async Task HandleAsync(CancellationToken cancellationToken)
    {
        var closed = await groups.ClosedTemplatesAsync(User.RequiredUserId(), cancellationToken);
        await Send.OkAsync([.. (await templates.ListAsync(cancellationToken)).Where(t => !closed.Contains(t.Name)).Select(t => t.ToBody(withEnvValues: User.IsAdmin()))], cancellationToken);
    }
}
