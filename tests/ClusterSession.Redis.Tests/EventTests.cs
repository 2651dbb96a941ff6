using System.Collections.Concurrent;
using ClusterSession.Testing.Servers;
using Xunit;

namespace ClusterSession.Redis.Tests;

[Collection(StandaloneRedis.Name)]
public sealed class RedisEventTests(RedisServerFixture server)
{
    [Fact]
    public async Task Subscribed_store_reports_deleted_and_expired_sessions()
    {
        var time = TestStores.NewClock();
        var store = await TestStores.CreateAsync(server.Configuration, time);
        var events = new ConcurrentQueue<SessionEndedEvent>();
        await using var subscription = await store.SubscribeToSessionEndsAsync(events.Enqueue);

        var deleted = SessionSnapshot.CreateNew(SessionId.Create(), time.GetUtcNow(), TimeSpan.FromMinutes(20), TimeSpan.FromHours(8));
        await store.CreateAsync(deleted);
        await store.DeleteAsync(deleted.Id!);

        // A real 300 ms TTL: expiry events come from the server's own clock.
        var expiring = SessionSnapshot.CreateNew(SessionId.Create(), time.GetUtcNow(), TimeSpan.FromMilliseconds(300), TimeSpan.FromHours(8));
        await store.CreateAsync(expiring);

        await ServerProcess.UntilAsync(
            () => Task.FromResult(events.Contains(new SessionEndedEvent(deleted.Handle, SessionEndReason.Deleted))
                && events.Contains(new SessionEndedEvent(expiring.Handle, SessionEndReason.Expired))),
            TimeSpan.FromSeconds(20),
            "the deletion and expiry events arrive");
    }
}

[Collection(Garnet.Name)]
public sealed class GarnetEventTests(GarnetServerFixture garnet)
{
    [Fact]
    public async Task Server_that_refuses_config_set_gets_a_clear_message_and_the_store_still_works()
    {
        var time = TestStores.NewClock();
        var store = await TestStores.CreateAsync(garnet.Configuration, time);

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => store.SubscribeToSessionEndsAsync(_ => { }));

        Assert.Contains("notify-keyspace-events", error.Message, StringComparison.Ordinal);
        Assert.Contains("configureServer: false", error.Message, StringComparison.Ordinal);
        var session = SessionSnapshot.CreateNew(SessionId.Create(), time.GetUtcNow(), TimeSpan.FromMinutes(20), TimeSpan.FromHours(8));
        Assert.True(await store.CreateAsync(session));
    }
}

[Collection(ClusterRedis.Name)]
public sealed class ClusterEventTests(RedisClusterFixture cluster)
{
    [Fact]
    public async Task Cluster_subscription_is_refused_with_a_clear_message()
    {
        var store = await TestStores.CreateAsync(cluster.Configuration, TestStores.NewClock());

        var error = await Assert.ThrowsAsync<NotSupportedException>(() => store.SubscribeToSessionEndsAsync(_ => { }));

        Assert.Contains("Redis Cluster", error.Message, StringComparison.Ordinal);
    }
}
