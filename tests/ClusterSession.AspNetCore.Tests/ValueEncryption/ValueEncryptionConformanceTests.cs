using ClusterSession.AspNetCore.Protection;
using ClusterSession.InMemory;
using ClusterSession.Redis;
using ClusterSession.Testing;
using ClusterSession.Testing.Servers;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.Extensions.Time.Testing;

namespace ClusterSession.AspNetCore.Tests.ValueEncryption;

/// <summary>
/// The whole store conformance suite over the encrypting layer (<see cref="ClusterSessionOptions.EncryptValues"/>):
/// with values encrypted, a store still keeps every promise of the contract, compare-and-set and its races included.
/// </summary>
public sealed class InMemoryValueEncryptionConformanceTests : SessionStoreConformanceTests
{
    private readonly IDataProtectionProvider _keys = new EphemeralDataProtectionProvider();

    // Data Protection costs microseconds per value; fewer rounds than the bare in-memory store's 2000 keep the run short.
    protected override int RaceRounds => 200;

    protected override Task<ISessionStore> CreateStoreAsync(FakeTimeProvider time)
        => Task.FromResult<ISessionStore>(Encrypting(new InMemorySessionStore(timeProvider: time), _keys));

    protected override ISessionStore CreateStoreWithOptions(Action<SessionStoreOptions> configure)
    {
        var options = new InMemorySessionStoreOptions();
        configure(options);
        return new InMemorySessionStore(options);
    }

    protected override Task DisposeStoreAsync(ISessionStore store) => base.DisposeStoreAsync(((ValueProtectingSessionStore)store).Inner);

    internal static ValueProtectingSessionStore Encrypting(ISessionStore inner, IDataProtectionProvider keys)
        => new(inner, new AttributeValueProtector(() => keys), encrypt: true);
}

/// <summary>The suite over the encrypting layer on a real redis-server.</summary>
[Collection(AspNetCoreRedis.Name)]
public sealed class RedisValueEncryptionConformanceTests(RedisServerFixture redis) : SessionStoreConformanceTests
{
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, Task<StackExchange.Redis.ConnectionMultiplexer>> Connections = new(StringComparer.Ordinal);

    private readonly IDataProtectionProvider _keys = new EphemeralDataProtectionProvider();

    protected override async Task<ISessionStore> CreateStoreAsync(FakeTimeProvider time)
    {
        // One connection for every test of the class, as the Redis store's own conformance tests share theirs.
        var connection = await Connections.GetOrAdd(redis.Configuration, static c => StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(c));
        var store = new RedisSessionStore(
            connection,
            new RedisSessionStoreOptions { KeyPrefix = "enc" + Guid.NewGuid().ToString("N")[..12] + ":", Limits = Limits },
            time);
        return InMemoryValueEncryptionConformanceTests.Encrypting(store, _keys);
    }

    protected override ISessionStore CreateStoreWithOptions(Action<SessionStoreOptions> configure)
    {
        var options = new RedisSessionStoreOptions { Configuration = redis.Configuration };
        configure(options);
        return new RedisSessionStore(options);
    }

    protected override Task DisposeStoreAsync(ISessionStore store) => base.DisposeStoreAsync(((ValueProtectingSessionStore)store).Inner);
}
