using Npgsql;

namespace StreamSpace.Api.Features.Templates;

/// <summary>What launching needs of the catalog: a template, read in the launch's own transaction.</summary>
public interface ITemplateCatalog
{
    Task<TemplateRow?> GetAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, string name, CancellationToken cancellationToken);
}
