using System.Collections.Concurrent;
using ClusterSession.Testing.Servers;
using Xunit;

namespace ClusterSession.Redis.Tests;

/// <summary>
/// The store's lifecycle event channel (<see cref="ISessionEventChannel"/>) with two stores on one prefix standing for two
/// nodes: what one publishes reaches both, exactly one claim of an event wins, and (where the server reports it) an expiry
/// reaches both by handle.
/// </summary>
public abstract class LifecycleChannelTests(string configuration)
{
    protected static readonly TimeSpan Deadline = TimeSpan.FromSeconds(20);

    protected string Configuration => configuration;

    [Fact]
    public async Task Published_event_reaches_every_subscribed_node_and_exactly_one_claim_wins()
    {
        var prefix = TestStores.UniquePrefix();
        var (a, b) = (await TestStores.CreateAsync(configuration, TimeProvider.System, prefix), await TestStores.CreateAsync(configuration, TimeProvider.System, prefix));
        var (seenByA, seenByB) = (new ConcurrentQueue<SessionLifecycleEvent>(), new ConcurrentQueue<SessionLifecycleEvent>());
        await using var subscriptionA = await a.SubscribeAsync(seenByA.Enqueue);
        await using var subscriptionB = await b.SubscribeAsync(seenByB.Enqueue);
        var handle = SessionHandle.FromId(SessionId.Create());
        var signedOut = SessionLifecycleEvent.Create(SessionLifecycleEventKind.Ended, SessionEndCause.SignedOut, handle, DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_123));

        await a.PublishAsync(signedOut);

        await ServerProcess.UntilAsync(() => Task.FromResult(seenByA.Contains(signedOut) && seenByB.Contains(signedOut)), Deadline, "both nodes receive the event");
        var claims = await Task.WhenAll(a.TryClaimAsync(signedOut.EventId, TimeSpan.FromMinutes(1)), b.TryClaimAsync(signedOut.EventId, TimeSpan.FromMinutes(1)));
        Assert.Single(claims, won => won);
        Assert.False(await a.TryClaimAsync(signedOut.EventId, TimeSpan.FromMinutes(1)));
    }

}

/// <summary>With expiries, reported by the server's keyevent notifications (on a cluster, by the node that holds the key).</summary>
public abstract class LifecycleChannelWithExpiryTests(string configuration) : LifecycleChannelTests(configuration)
{
    [Fact]
    public async Task Expiry_reaches_every_subscribed_node_by_handle()
    {
        var prefix = TestStores.UniquePrefix();
        var (a, b) = (await TestStores.CreateAsync(Configuration, TimeProvider.System, prefix), await TestStores.CreateAsync(Configuration, TimeProvider.System, prefix));
        var (seenByA, seenByB) = (new ConcurrentQueue<SessionLifecycleEvent>(), new ConcurrentQueue<SessionLifecycleEvent>());
        await using var subscriptionA = await a.SubscribeAsync(seenByA.Enqueue);
        await using var subscriptionB = await b.SubscribeAsync(seenByB.Enqueue);

        // Real 300 ms TTLs: expiries come from the server's own clock. Several sessions, so that on a cluster they land on
        // different nodes (each node reports its own keys' expiries).
        var expiring = Enumerable.Range(0, 8).Select(_ => SessionSnapshot.CreateNew(SessionId.Create(), DateTimeOffset.UtcNow, TimeSpan.FromMilliseconds(300), TimeSpan.FromHours(8))).ToArray();
        foreach (var session in expiring)
        {
            Assert.True(await a.CreateAsync(session));
        }

        static bool Expired(ConcurrentQueue<SessionLifecycleEvent> seen, string handle)
            => seen.Any(e => e is { Kind: SessionLifecycleEventKind.Ended, EndCause: SessionEndCause.Expired } && e.Handle == handle && e.EventId == "x" + handle);
        // Redis expires a key by a sampling cycle, or when the key is read. On a server that holds many keys with long TTLs
        // (the fixture is shared with other tests), the cycle may take tens of seconds to sample these: each round reads
        // the sessions not reported yet, without touching them, as a request that comes back would.
        await Task.Delay(TimeSpan.FromMilliseconds(400));
        await ServerProcess.UntilAsync(
            async () =>
            {
                foreach (var session in expiring.Where(s => !(Expired(seenByA, s.Handle) && Expired(seenByB, s.Handle))))
                {
                    Assert.Null(await b.LoadAsync(session.Id!, SessionLoadOptions.NoTouch));
                }

                return expiring.All(s => Expired(seenByA, s.Handle) && Expired(seenByB, s.Handle));
            },
            Deadline,
            "both nodes hear of every expiry");
    }
}

[Collection(StandaloneRedis.Name)]
public sealed class StandaloneLifecycleChannelTests(RedisServerFixture server) : LifecycleChannelWithExpiryTests(server.Configuration);

[Collection(SentinelRedis.Name)]
public sealed class SentinelLifecycleChannelTests(RedisSentinelFixture sentinel) : LifecycleChannelWithExpiryTests(sentinel.Configuration);

[Collection(ClusterRedis.Name)]
public sealed class ClusterLifecycleChannelTests(RedisClusterFixture cluster) : LifecycleChannelWithExpiryTests(cluster.Configuration);
