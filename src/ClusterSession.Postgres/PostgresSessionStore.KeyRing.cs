using System.Xml.Linq;

namespace ClusterSession.Postgres;

/// <summary>
/// The Data Protection key ring in PostgreSQL: the <c>key_ring</c> table beside the session tables
/// (schema.sql, docs/postgres-data-model.md), one row per XML element, only ever inserted.
/// </summary>
public sealed partial class PostgresSessionStore : IKeyRingStore
{
    /// <summary>The quoted name of the Data Protection key ring table, e.g. <c>"public"."clustersession_key_ring"</c>.</summary>
    public string KeyRingTableName => _sql.KeyRingTable;

    /// <inheritdoc />
    public IReadOnlyCollection<XElement> GetAllElements()
    {
        // IXmlRepository is synchronous; Data Protection calls it when it (re)loads its cached key ring, not per request.
        try
        {
            WaitForSchema();
            using var command = CreateCommand($"SELECT xml FROM {_sql.KeyRingTable} ORDER BY id");
            using var reader = command.ExecuteReader();
            var elements = new List<XElement>();
            while (reader.Read())
            {
                elements.Add(XElement.Parse(reader.GetString(0)));
            }

            return elements;
        }
        catch (Exception ex) when (IsStoreFailure(ex, CancellationToken.None))
        {
            throw Unavailable(ex, "key ring read");
        }
    }

    /// <inheritdoc />
    public void StoreElement(XElement element, string friendlyName)
    {
        ArgumentNullException.ThrowIfNull(element);
        try
        {
            WaitForSchema();
            using var command = CreateCommand($"INSERT INTO {_sql.KeyRingTable} (friendly_name, xml) VALUES ($1, $2)");
            command.Parameters.Add(Text(friendlyName ?? string.Empty));
            command.Parameters.Add(Text(element.ToString(SaveOptions.DisableFormatting)));
            command.ExecuteNonQuery();
        }
        catch (Exception ex) when (IsStoreFailure(ex, CancellationToken.None))
        {
            throw Unavailable(ex, "key ring write");
        }
    }

    private void WaitForSchema()
    {
        var pending = EnsureSchemaAsync(CancellationToken.None);
        if (!pending.IsCompletedSuccessfully)
        {
            pending.AsTask().GetAwaiter().GetResult();
        }
    }
}
