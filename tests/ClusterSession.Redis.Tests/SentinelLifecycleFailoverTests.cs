using System.Collections.Concurrent;
using ClusterSession.Testing.Servers;
using Xunit;

namespace ClusterSession.Redis.Tests;

/// <summary>
/// Lifecycle events after a Sentinel failover, on a deployment of its own: both nodes' subscriptions follow the new
/// primary by themselves, published events and expiries (reported by the promoted replica) reach both again.
/// </summary>
public sealed class SentinelLifecycleFailoverTests : IAsyncLifetime
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(40);
    private readonly RedisSentinelFixture _sentinel = new();

    public Task InitializeAsync() => _sentinel.InitializeAsync();

    public Task DisposeAsync() => _sentinel.DisposeAsync();

    [Fact]
    public async Task After_a_failover_published_events_and_expiries_reach_both_nodes_again()
    {
        var prefix = TestStores.UniquePrefix();
        await using var a = NewStore(prefix);
        await using var b = NewStore(prefix);
        var (seenByA, seenByB) = (new ConcurrentQueue<SessionLifecycleEvent>(), new ConcurrentQueue<SessionLifecycleEvent>());
        await using var subscriptionA = await a.SubscribeAsync(seenByA.Enqueue);
        await using var subscriptionB = await b.SubscribeAsync(seenByB.Enqueue);
        var before = NewEvent();
        await a.PublishAsync(before);
        await ServerProcess.UntilAsync(() => Task.FromResult(seenByA.Contains(before) && seenByB.Contains(before)), Deadline, "both nodes receive an event before the failover");

        var oldPrimary = await _sentinel.PrimaryPortAsync();
        await _sentinel.FailoverAsync();
        await ServerProcess.UntilAsync(async () => await _sentinel.PrimaryPortAsync() != oldPrimary, Deadline, "the sentinels promote the replica");
        await _sentinel.UntilSettledAsync(Deadline);

        // Pub/Sub keeps nothing: an event published before a node resubscribed to the new primary is lost to it (the
        // documented window). Publish a fresh one until both nodes hear the same one.
        await ServerProcess.UntilAsync(
            async () =>
            {
                var after = NewEvent();
                try
                {
                    await b.PublishAsync(after);
                }
                catch (SessionStoreUnavailableException)
                {
                    return false;
                }

                await Task.Delay(200);
                return seenByA.Contains(after) && seenByB.Contains(after);
            },
            Deadline,
            "both nodes receive an event published after the failover");

        var expiring = SessionSnapshot.CreateNew(SessionId.Create(), DateTimeOffset.UtcNow, TimeSpan.FromMilliseconds(300), TimeSpan.FromHours(8));
        Assert.True(await a.CreateAsync(expiring));
        static bool Expired(ConcurrentQueue<SessionLifecycleEvent> seen, string handle) => seen.Any(e => e.EndCause == SessionEndCause.Expired && e.Handle == handle);
        await ServerProcess.UntilAsync(() => Task.FromResult(Expired(seenByA, expiring.Handle) && Expired(seenByB, expiring.Handle)), Deadline, "both nodes hear of an expiry on the new primary");
    }

    private RedisSessionStore NewStore(string prefix) => new(new RedisSessionStoreOptions
    {
        Configuration = _sentinel.Configuration + ",allowAdmin=true",
        KeyPrefix = prefix,
        OperationTimeout = TimeSpan.FromSeconds(3),
    });

    private static SessionLifecycleEvent NewEvent()
        => SessionLifecycleEvent.Create(SessionLifecycleEventKind.Created, null, SessionHandle.FromId(SessionId.Create()), DateTimeOffset.FromUnixTimeMilliseconds(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()));
}
