using System.Xml.Linq;
using StackExchange.Redis;

namespace ClusterSession.Redis;

/// <summary>
/// The Data Protection key ring in Redis: one list (<see cref="RedisSessionStoreOptions.KeyRingKey"/>) of
/// XML elements, appended with RPUSH and read with LRANGE, as Microsoft.AspNetCore.DataProtection.StackExchangeRedis
/// keeps it. One key, so Redis Cluster needs nothing cross-slot; no TTL, because a lost key ring signs everyone out.
/// </summary>
public sealed partial class RedisSessionStore : IKeyRingStore
{
    /// <summary>The Redis key of the key ring list (docs/redis-data-model.md).</summary>
    public string KeyRingKey => _options.KeyRingKey ?? _options.KeyPrefix + "dataprotection-keys";

    /// <inheritdoc />
    public IReadOnlyCollection<XElement> GetAllElements()
    {
        var values = RunKeyRingCommand(static (db, key) => db.ListRangeAsync(key, flags: CommandFlags.DemandMaster), "read");
        var elements = new List<XElement>(values.Length);
        foreach (var value in values)
        {
            elements.Add(XElement.Parse((string)value!));
        }

        return elements;
    }

    /// <inheritdoc />
    public void StoreElement(XElement element, string friendlyName)
    {
        ArgumentNullException.ThrowIfNull(element);
        var xml = element.ToString(SaveOptions.DisableFormatting);
        RunKeyRingCommand((db, key) => db.ListRightPushAsync(key, xml, flags: CommandFlags.DemandMaster), "write");
    }

    private TResult RunKeyRingCommand<TResult>(Func<IDatabase, RedisKey, Task<TResult>> command, string what)
    {
        // IXmlRepository is synchronous. Data Protection calls it when it (re)loads its cached key ring, not per
        // request, so blocking here is rare; the store's one deadline and one failure mapping apply as to sessions.
        return RunAsync(
                "key ring " + what,
                (command, key: (RedisKey)KeyRingKey),
                (state, token) => CommandAsync(static (db, s) => s.command(db, s.key), state, token),
                CancellationToken.None)
            .AsTask().GetAwaiter().GetResult();
    }
}
