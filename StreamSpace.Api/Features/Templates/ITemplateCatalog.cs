using Npgsql;

namespace StreamSpace.Api.Features.Templates;

/// <summary>What launching and sharing need of the catalog: a template, read in the launch's own transaction or on its own.</summary>
public interface ITemplateCatalog
{
    Task<TemplateRow?> GetAsync(string name, CancellationToken cancellationToken);

    Task<TemplateRow?> GetAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, string name, CancellationToken cancellationToken);
}
