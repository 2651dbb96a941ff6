using ClusterSession.Testing;
using ClusterSession.Testing.Servers;
using Xunit;

namespace ClusterSession.Redis.Tests;

/// <summary>The key ring on a store that connects on first use (the key ring's synchronous path makes the connection).</summary>
[Collection(StandaloneRedis.Name)]
public sealed class StandaloneRedisKeyRingTests(RedisServerFixture server) : KeyRingStoreConformanceTests
{
    protected override Task<IKeyRingStore> CreateStoreAsync(string ring)
        => Task.FromResult<IKeyRingStore>(new RedisSessionStore(new RedisSessionStoreOptions { Configuration = server.Configuration, KeyPrefix = ring + ":" }));
}

/// <summary>One key, so one slot: nothing cross-slot on a Redis Cluster.</summary>
[Collection(ClusterRedis.Name)]
public sealed class ClusterRedisKeyRingTests(RedisClusterFixture cluster) : KeyRingStoreConformanceTests
{
    protected override Task<IKeyRingStore> CreateStoreAsync(string ring)
        => Task.FromResult<IKeyRingStore>(new RedisSessionStore(new RedisSessionStoreOptions { Configuration = cluster.Configuration, KeyRingKey = ring }));
}

[Collection(Garnet.Name)]
public sealed class GarnetKeyRingTests(GarnetServerFixture garnet) : KeyRingStoreConformanceTests
{
    protected override async Task<IKeyRingStore> CreateStoreAsync(string ring)
        => await TestStores.CreateAsync(garnet.Configuration, TimeProvider.System, prefix: ring + ":");
}
