using ClusterSession.Testing;
using ClusterSession.Testing.Servers;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace ClusterSession.Redis.Tests;

/// <summary>The whole conformance suite with the near cache on, the cache proven working before each test starts.</summary>
[Collection(StandaloneRedis.Name)]
public sealed class StandaloneRedisNearCacheConformanceTests(RedisServerFixture server) : SessionStoreConformanceTests
{
    protected override Task<ISessionStore> CreateStoreAsync(FakeTimeProvider time) => NearStores.CreateUsableAsync(server.Configuration, time, Limits);

    protected override ISessionStore CreateStoreWithOptions(Action<SessionStoreOptions> configure) => NearStores.CreateWithOptions(server.Configuration, configure);
}

[Collection(ClusterRedis.Name)]
public sealed class ClusterRedisNearCacheConformanceTests(RedisClusterFixture cluster) : SessionStoreConformanceTests
{
    protected override Task<ISessionStore> CreateStoreAsync(FakeTimeProvider time) => NearStores.CreateUsableAsync(cluster.Configuration, time, Limits);

    protected override ISessionStore CreateStoreWithOptions(Action<SessionStoreOptions> configure) => NearStores.CreateWithOptions(cluster.Configuration, configure);
}

internal static class NearStores
{
    /// <summary>A store with the near cache on whose channel is proven (a heartbeat came back), so the suite runs against the cache.</summary>
    public static async Task<ISessionStore> CreateUsableAsync(string configuration, FakeTimeProvider time, SessionLimits limits)
    {
        var store = await TestStores.CreateAsync(configuration, time, configure: o =>
        {
            o.Limits = limits;
            o.NearCache = new NearCacheOptions { Enabled = true };
        });
        await UntilUsableAsync(store);
        return store;
    }

    public static ISessionStore CreateWithOptions(string configuration, Action<SessionStoreOptions> configure)
        => TestStores.CreateWithOptions(configuration, o =>
        {
            ((RedisSessionStoreOptions)o).NearCache = new NearCacheOptions { Enabled = true };
            configure(o);
        });

    /// <summary>Starts the store's subscription (its first operation does) and waits until a heartbeat came back.</summary>
    public static async Task UntilUsableAsync(RedisSessionStore store)
    {
        await store.LoadAsync(SessionId.Create());
        await ServerProcess.UntilAsync(() => Task.FromResult(store.NearCacheUsable), TimeSpan.FromSeconds(10), "the near cache's first heartbeat comes back");
    }
}

[Collection(SentinelRedis.Name)]
public sealed class SentinelRedisNearCacheConformanceTests(RedisSentinelFixture sentinel) : SessionStoreConformanceTests
{
    protected override Task<ISessionStore> CreateStoreAsync(FakeTimeProvider time) => NearStores.CreateUsableAsync(sentinel.Configuration, time, Limits);

    protected override ISessionStore CreateStoreWithOptions(Action<SessionStoreOptions> configure) => NearStores.CreateWithOptions(sentinel.Configuration, configure);
}

[Collection(Garnet.Name)]
public sealed class GarnetNearCacheConformanceTests(GarnetServerFixture garnet) : SessionStoreConformanceTests
{
    protected override Task<ISessionStore> CreateStoreAsync(FakeTimeProvider time) => NearStores.CreateUsableAsync(garnet.Configuration, time, Limits);

    protected override ISessionStore CreateStoreWithOptions(Action<SessionStoreOptions> configure) => NearStores.CreateWithOptions(garnet.Configuration, configure);
}
