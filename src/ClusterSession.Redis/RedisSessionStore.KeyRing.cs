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
        var values = RunKeyRingCommand(static (db, key) => db.ListRange(key), "read");
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
        RunKeyRingCommand((db, key) => db.ListRightPush(key, xml), "write");
    }

    private TResult RunKeyRingCommand<TResult>(Func<IDatabase, RedisKey, TResult> command, string what)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        try
        {
            // IXmlRepository is synchronous. Data Protection calls it when it (re)loads its cached key ring,
            // not per request, so blocking for the first connection here is a one-off.
            var multiplexer = _multiplexer ?? ConnectAsync(CancellationToken.None).WaitAsync(_options.OperationTimeout).GetAwaiter().GetResult();
            return command(multiplexer.GetDatabase(), KeyRingKey);
        }
        catch (Exception ex) when (IsUnavailable(ex))
        {
            LogUnavailable(_logger, ex.GetType().Name);
            throw new SessionStoreUnavailableException(
                $"The Redis session store could not {what} the Data Protection key ring within {_options.OperationTimeout.TotalMilliseconds:0} ms ({ex.GetType().Name}: {ex.Message}). Check that Redis is running and reachable; cookies cannot be protected or read without the key ring.",
                ex);
        }
    }
}
