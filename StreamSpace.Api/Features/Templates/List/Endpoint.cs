using FastEndpoints;
using StreamSpace.Api.Features.Auth;

namespace StreamSpace.Api.Features.Templates.List;

public sealed class ListTemplatesEndpoint(TemplateStore templates) : EndpointWithoutRequest<IReadOnlyList<TemplateBody>>
{
    public override void Configure()
    {
        Get("templates");
        Summary(s => s.Summary = "The template catalog.");
    }

    public override async Task HandleAsync(CancellationToken cancellationToken) =>
        await Send.OkAsync([.. (await templates.ListAsync(cancellationToken)).Select(t => t.ToBody(withEnvValues: User.IsAdmin()))], cancellationToken);
}
