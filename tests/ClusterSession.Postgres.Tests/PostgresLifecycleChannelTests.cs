using System.Collections.Concurrent;
using ClusterSession.Testing.Servers;
using Microsoft.Extensions.Time.Testing;

namespace ClusterSession.Postgres.Tests;

/// <summary>
/// The store's lifecycle event channel (<see cref="ISessionEventChannel"/>) with two stores on the same tables standing for
/// two nodes: what one publishes reaches both, exactly one claim of an event wins, and the cleanup reports what it expired.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class PostgresLifecycleChannelTests(PostgresTestServer server)
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(20);
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2030, 1, 2, 3, 4, 5, TimeSpan.Zero));

    [Fact]
    public async Task Published_event_reaches_every_subscribed_node_and_exactly_one_claim_wins()
    {
        var (a, b) = await TwoNodesAsync();
        var (seenByA, seenByB) = (new ConcurrentQueue<SessionLifecycleEvent>(), new ConcurrentQueue<SessionLifecycleEvent>());
        await using (await a.SubscribeAsync(seenByA.Enqueue))
        await using (await b.SubscribeAsync(seenByB.Enqueue))
        {
            var created = SessionLifecycleEvent.Create(SessionLifecycleEventKind.Created, null, SessionHandle.FromId(SessionId.Create()), DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_123));

            await b.PublishAsync(created);

            await ServerProcess.UntilAsync(() => Task.FromResult(seenByA.Contains(created) && seenByB.Contains(created)), Deadline, "both nodes receive the event");
            var claims = await Task.WhenAll(a.TryClaimAsync(created.EventId, TimeSpan.FromMinutes(1)), b.TryClaimAsync(created.EventId, TimeSpan.FromMinutes(1)));
            Assert.Single(claims, won => won);
            Assert.False(await b.TryClaimAsync(created.EventId, TimeSpan.FromMinutes(1)));
        }

        await server.DropAsync(a);
        await b.DisposeAsync();
    }

    [Fact]
    public async Task Cleanup_reports_each_expired_session_by_handle_to_every_node_once()
    {
        var (a, b) = await TwoNodesAsync();
        var (seenByA, seenByB) = (new ConcurrentQueue<SessionLifecycleEvent>(), new ConcurrentQueue<SessionLifecycleEvent>());
        await using (await a.SubscribeAsync(seenByA.Enqueue))
        await using (await b.SubscribeAsync(seenByB.Enqueue))
        {
            var expiring = SessionSnapshot.CreateNew(SessionId.Create(), _time.GetUtcNow(), TimeSpan.FromMinutes(5), TimeSpan.FromHours(8));
            var live = SessionSnapshot.CreateNew(SessionId.Create(), _time.GetUtcNow(), TimeSpan.FromHours(1), TimeSpan.FromHours(8));
            Assert.True(await a.CreateAsync(expiring));
            Assert.True(await a.CreateAsync(live));
            _time.Advance(TimeSpan.FromMinutes(6));

            // Both nodes run the cleanup; the expired session is deleted, and reported, by one of them.
            var deleted = await Task.WhenAll(a.CleanupExpiredAsync(), b.CleanupExpiredAsync());

            Assert.Equal(1, deleted.Sum());
            var expected = SessionLifecycleEvent.Expired(expiring.Handle, _time.GetUtcNow());
            await ServerProcess.UntilAsync(() => Task.FromResult(seenByA.Contains(expected) && seenByB.Contains(expected)), Deadline, "both nodes hear of the expiry");
            Assert.Single(seenByA);
            Assert.DoesNotContain(seenByB, e => e.Handle == live.Handle);
        }

        await server.DropAsync(a);
        await b.DisposeAsync();
    }

    private async Task<(PostgresSessionStore A, PostgresSessionStore B)> TwoNodesAsync()
    {
        var a = await server.CreateStoreAsync(_time);
        var prefix = a.SessionsTableName.Split('"')[3][..^"sessions".Length];
        var b = await server.CreateStoreAsync(_time, configure: o => o.TablePrefix = prefix);
        return (a, b);
    }
}
