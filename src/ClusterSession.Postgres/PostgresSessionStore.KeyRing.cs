using System.Xml.Linq;
using static ClusterSession.Postgres.PostgresParameters;

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
        => RunSynchronously("key ring read", this, static (store, token) => store.ReadKeyRingAsync(token));

    /// <inheritdoc />
    public void StoreElement(XElement element, string friendlyName)
    {
        ArgumentNullException.ThrowIfNull(element);
        RunSynchronously(
            "key ring write",
            (store: this, name: friendlyName ?? string.Empty, xml: element.ToString(SaveOptions.DisableFormatting)),
            static (s, token) => s.store.WriteKeyRingAsync(s.name, s.xml, token));
    }

    /// <summary>
    /// IXmlRepository is synchronous; Data Protection calls it when it (re)loads its cached key ring, not per
    /// request, so blocking here is rare. The store's one deadline and one failure mapping apply as to sessions.
    /// </summary>
    private TResult RunSynchronously<TState, TResult>(string operation, TState state, Func<TState, CancellationToken, Task<TResult>> body)
        => RunAsync(operation, state, body, CancellationToken.None).AsTask().GetAwaiter().GetResult();

    private async Task<IReadOnlyCollection<XElement>> ReadKeyRingAsync(CancellationToken token)
    {
        var command = CreateCommand($"SELECT xml FROM {_sql.KeyRingTable} ORDER BY id");
        await using (command.ConfigureAwait(false))
        {
            var reader = await command.ExecuteReaderAsync(token).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                var elements = new List<XElement>();
                while (await reader.ReadAsync(token).ConfigureAwait(false))
                {
                    elements.Add(XElement.Parse(reader.GetString(0)));
                }

                return elements;
            }
        }
    }

    private async Task<int> WriteKeyRingAsync(string friendlyName, string xml, CancellationToken token)
    {
        var command = CreateCommand($"INSERT INTO {_sql.KeyRingTable} (friendly_name, xml) VALUES ($1, $2)", Text(friendlyName), Text(xml));
        await using (command.ConfigureAwait(false))
        {
            return await command.ExecuteNonQueryAsync(token).ConfigureAwait(false);
        }
    }
}
