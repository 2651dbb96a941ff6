using System.Diagnostics;
using ClusterSession.Testing;
using ClusterSession.Testing.Servers;
using Microsoft.Extensions.Time.Testing;
using StackExchange.Redis;
using Xunit;

namespace ClusterSession.Redis.Tests;

/// <summary>The whole conformance suite with the near cache on, the cache proven working before each test starts.</summary>
public abstract class RedisNearCacheConformanceTests : SessionStoreConformanceTests
{
    private readonly string _prefix = TestStores.UniquePrefix();

    /// <summary>The StackExchange.Redis configuration of the server under test.</summary>
    protected abstract string Configuration { get; }

    protected override Task<ISessionStore> CreateStoreAsync(FakeTimeProvider time) => NearStores.CreateUsableAsync(Configuration, _prefix, time, Limits);

    protected override async Task DisposeStoreAsync(ISessionStore store)
    {
        await base.DisposeStoreAsync(store);
        await NearStores.DeleteKeysAsync(Configuration, _prefix);
    }

    protected override ISessionStore CreateStoreWithOptions(Action<SessionStoreOptions> configure) => NearStores.CreateWithOptions(Configuration, configure);
}

[Collection(StandaloneRedis.Name)]
public sealed class StandaloneRedisNearCacheConformanceTests(RedisServerFixture server) : RedisNearCacheConformanceTests
{
    protected override string Configuration => server.Configuration;
}

[Collection(ClusterRedis.Name)]
public sealed class ClusterRedisNearCacheConformanceTests(RedisClusterFixture cluster) : RedisNearCacheConformanceTests
{
    protected override string Configuration => cluster.Configuration;
}

internal static class NearStores
{
    /// <summary>A store with the near cache on whose channel is proven (a heartbeat came back), so the suite runs against the cache.</summary>
    public static async Task<ISessionStore> CreateUsableAsync(string configuration, string prefix, FakeTimeProvider time, SessionLimits limits)
    {
        var store = await TestStores.CreateAsync(configuration, time, prefix, o =>
        {
            o.Limits = limits;
            o.NearCache = new NearCacheOptions { Enabled = true };
        });
        await UntilUsableAsync(store, time);
        return store;
    }

    public static ISessionStore CreateWithOptions(string configuration, Action<SessionStoreOptions> configure)
        => TestStores.CreateWithOptions(configuration, o =>
        {
            ((RedisSessionStoreOptions)o).NearCache = new NearCacheOptions { Enabled = true };
            configure(o);
        });

    /// <summary>
    /// Deletes a test's keys. Some tests create thousands of sessions; left behind, they slow Redis's sampled expiry,
    /// which other tests of the same server wait for.
    /// </summary>
    public static async Task DeleteKeysAsync(string configuration, string prefix)
    {
        var multiplexer = await TestStores.MultiplexerAsync(configuration);
        var database = multiplexer.GetDatabase();
        foreach (var server in multiplexer.GetServers().Where(s => s.IsConnected && !s.IsReplica))
        {
            // A page at a time, one key per DEL (a cluster's keys are in many slots), so the shared connection stays responsive.
            var page = new List<Task>(1000);
            await foreach (var key in server.KeysAsync(pattern: prefix + "*", pageSize: 1000))
            {
                page.Add(database.KeyDeleteAsync(key));
                if (page.Count == 1000)
                {
                    await Task.WhenAll(page);
                    page.Clear();
                }
            }

            await Task.WhenAll(page);
        }
    }

    /// <summary>
    /// Starts the store's subscription (its first operation does) and waits until a heartbeat came back. The store sends a
    /// heartbeat when it subscribes and then every interval on its own clock: with a test clock (<paramref name="time"/>),
    /// a second of it is let pass for each second of waiting, so that a first heartbeat lost to a connection event (which
    /// drops the channel) is followed by another, as the real clock would.
    /// </summary>
    public static async Task UntilUsableAsync(RedisSessionStore store, FakeTimeProvider? time = null)
    {
        await store.LoadAsync(SessionId.Create());
        var nudged = Stopwatch.StartNew();
        await ServerProcess.UntilAsync(
            () =>
            {
                if (time is not null && !store.NearCacheUsable && nudged.Elapsed >= TimeSpan.FromSeconds(1))
                {
                    time.Advance(TimeSpan.FromSeconds(1));
                    nudged.Restart();
                }

                return Task.FromResult(store.NearCacheUsable);
            },
            TimeSpan.FromSeconds(30),
            "the near cache's first heartbeat comes back");
    }
}

[Collection(SentinelRedis.Name)]
public sealed class SentinelRedisNearCacheConformanceTests(RedisSentinelFixture sentinel) : RedisNearCacheConformanceTests
{
    protected override string Configuration => sentinel.Configuration;
}

[Collection(Garnet.Name)]
public sealed class GarnetNearCacheConformanceTests(GarnetServerFixture garnet) : RedisNearCacheConformanceTests
{
    protected override string Configuration => garnet.Configuration;
}
