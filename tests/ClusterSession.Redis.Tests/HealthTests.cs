using ClusterSession.Testing.Servers;
using Xunit;

namespace ClusterSession.Redis.Tests;

/// <summary>The store's own health report on a real primary and replica: degraded while saves cannot reach the replicas they wait for.</summary>
[Collection(SentinelRedis.Name)]
public sealed class ReplicaHealthTests(RedisSentinelFixture sentinel)
{
    [Fact]
    public async Task Health_is_degraded_while_the_replica_saves_wait_for_is_down_and_healthy_again_when_it_is_back()
    {
        await sentinel.UntilSettledAsync(TimeSpan.FromSeconds(60));
        await using var waiting = new RedisSessionStore(new RedisSessionStoreOptions
        {
            Configuration = sentinel.Configuration,
            KeyPrefix = TestStores.UniquePrefix(),
            WaitForReplicas = 1,
        });
        await using var notWaiting = new RedisSessionStore(new RedisSessionStoreOptions
        {
            Configuration = sentinel.Configuration,
            KeyPrefix = TestStores.UniquePrefix(),
        });
        Assert.Equal(SessionStoreHealthStatus.Healthy, (await waiting.GetHealthAsync()).Status);

        var replica = await sentinel.KillReplicaAsync();
        try
        {
            await ServerProcess.UntilAsync(
                async () => (await waiting.GetHealthAsync()).Status == SessionStoreHealthStatus.Degraded,
                TimeSpan.FromSeconds(20),
                "the store reports the missing replica");
            var degraded = await waiting.GetHealthAsync();
            Assert.StartsWith("0 of 1 replica(s)", degraded.Description, StringComparison.Ordinal);
            Assert.Equal(SessionStoreHealthStatus.Healthy, (await notWaiting.GetHealthAsync()).Status);
        }
        finally
        {
            await sentinel.RestartAsReplicaAsync(replica);
            await sentinel.UntilSettledAsync(TimeSpan.FromSeconds(60));
        }

        Assert.Equal(SessionStoreHealthStatus.Healthy, (await waiting.GetHealthAsync()).Status);
    }
}

/// <summary>The health report on a primary without replicas, also when the server refuses INFO.</summary>
public sealed class StandaloneHealthTests
{
    [Fact]
    public async Task Health_is_degraded_when_writes_wait_for_a_replica_the_primary_does_not_have()
    {
        await using var server = await RedisProcess.StartAsync();
        await using var store = new RedisSessionStore(new RedisSessionStoreOptions { Configuration = $"127.0.0.1:{server.Port}", WaitForReplicas = 1 });

        var health = await store.GetHealthAsync();

        Assert.Equal(SessionStoreHealthStatus.Degraded, health.Status);
        Assert.Contains("WaitForReplicas", health.Description, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Health_without_INFO_still_learns_from_a_write_that_it_gets_no_replica_acknowledgement()
    {
        await using var server = await RedisProcess.StartAsync();
        await server.CommandAsync($"ACL SETUSER {SessionStoreAcl.User} {SessionStoreAcl.Rules.Replace(" +info", " -info", StringComparison.Ordinal)}");
        await using var store = new RedisSessionStore(new RedisSessionStoreOptions
        {
            Configuration = $"127.0.0.1:{server.Port},user={SessionStoreAcl.User},password={SessionStoreAcl.Password}",
            KeyPrefix = SessionStoreAcl.Prefix,
            WaitForReplicas = 1,
        });

        var health = await store.GetHealthAsync();

        // INFO is refused, so the connected replicas are unknown; the probe write's WAIT says there are none in sync.
        Assert.Equal(SessionStoreHealthStatus.Degraded, health.Status);
        Assert.StartsWith("A write got 0 of the 1 replica acknowledgement(s)", health.Description, StringComparison.Ordinal);
    }
}
