using System.Xml.Linq;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.AspNetCore.DataProtection.Repositories;
using Npgsql;

namespace StreamSpace.Web.Services.DataProtection;

/// <summary>
/// Keeps the Data Protection key ring (which encrypts the auth cookie) in PostgreSQL's <c>data_protection_keys</c>, so
/// a cookie issued before a restart, or by another replica, still decrypts. The API's migrations create the table: the
/// schema has one owner, and the web cannot serve a signed-in page before the API is up anyway.
/// </summary>
public sealed class PostgresXmlRepository(NpgsqlDataSource dataSource) : IXmlRepository
{
    public IReadOnlyCollection<XElement> GetAllElements()
    {
        using var connection = dataSource.OpenConnection();
        using var command = new NpgsqlCommand("SELECT xml FROM data_protection_keys ORDER BY id", connection);
        using var reader = command.ExecuteReader();
        var elements = new List<XElement>();
        while (reader.Read())
        {
            elements.Add(XElement.Parse(reader.GetString(0)));
        }

        return elements;
    }

    public void StoreElement(XElement element, string friendlyName)
    {
        using var connection = dataSource.OpenConnection();
        using var command = new NpgsqlCommand("INSERT INTO data_protection_keys (friendly_name, xml) VALUES ($1, $2)", connection);
        command.Parameters.Add(new NpgsqlParameter { Value = friendlyName });
        command.Parameters.Add(new NpgsqlParameter { Value = element.ToString(SaveOptions.DisableFormatting) });
        command.ExecuteNonQuery();
    }
}

public static class DataProtectionExtensions
{
    public static IHostApplicationBuilder AddStreamSpaceDataProtection(this IHostApplicationBuilder builder, WebSettings settings)
    {
        var dataSource = NpgsqlDataSource.Create(settings.ConnectionString);
        builder.Services.AddSingleton(dataSource);
        builder.Services.AddDataProtection()
            // Fixed, so every replica (whatever its content root) reads the same keys the same way.
            .SetApplicationName("streamspace-web");
        builder.Services.Configure<KeyManagementOptions>(options => options.XmlRepository = new PostgresXmlRepository(dataSource));
        return builder;
    }
}
