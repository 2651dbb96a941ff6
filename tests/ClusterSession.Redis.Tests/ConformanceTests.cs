using ClusterSession.Testing;
using ClusterSession.Testing.Servers;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace ClusterSession.Redis.Tests;

[Collection(StandaloneRedis.Name)]
public sealed class StandaloneRedisConformanceTests(RedisServerFixture server) : SessionStoreConformanceTests
{
    protected override async Task<ISessionStore> CreateStoreAsync(FakeTimeProvider time) => await TestStores.CreateAsync(server.Configuration, time, configure: o => o.Limits = Limits);

    protected override ISessionStore CreateStoreWithOptions(Action<SessionStoreOptions> configure) => TestStores.CreateWithOptions(server.Configuration, configure);
}

[Collection(ClusterRedis.Name)]
public sealed class ClusterRedisConformanceTests(RedisClusterFixture cluster) : SessionStoreConformanceTests
{
    protected override async Task<ISessionStore> CreateStoreAsync(FakeTimeProvider time) => await TestStores.CreateAsync(cluster.Configuration, time, configure: o => o.Limits = Limits);

    protected override ISessionStore CreateStoreWithOptions(Action<SessionStoreOptions> configure) => TestStores.CreateWithOptions(cluster.Configuration, configure);
}

[Collection(SentinelRedis.Name)]
public sealed class SentinelRedisConformanceTests(RedisSentinelFixture sentinel) : SessionStoreConformanceTests
{
    protected override async Task<ISessionStore> CreateStoreAsync(FakeTimeProvider time) => await TestStores.CreateAsync(sentinel.Configuration, time, configure: o => o.Limits = Limits);

    protected override ISessionStore CreateStoreWithOptions(Action<SessionStoreOptions> configure) => TestStores.CreateWithOptions(sentinel.Configuration, configure);
}

[Collection(Garnet.Name)]
public sealed class GarnetConformanceTests(GarnetServerFixture garnet) : SessionStoreConformanceTests
{
    protected override async Task<ISessionStore> CreateStoreAsync(FakeTimeProvider time) => await TestStores.CreateAsync(garnet.Configuration, time, configure: o => o.Limits = Limits);

    protected override ISessionStore CreateStoreWithOptions(Action<SessionStoreOptions> configure) => TestStores.CreateWithOptions(garnet.Configuration, configure);
}
