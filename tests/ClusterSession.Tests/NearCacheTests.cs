using ClusterSession.Caching;
using Microsoft.Extensions.Time.Testing;

namespace ClusterSession.Tests;

/// <summary>The node-side rules of the near cache; the stores' tests run it against real servers.</summary>
public sealed class NearCacheTests : IDisposable
{
    private readonly FakeTimeProvider _time = new(DateTimeOffset.Parse("2026-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
    private readonly NearCache _cache;

    public NearCacheTests()
    {
        _cache = new NearCache(new NearCacheOptions { Enabled = true, MaxAge = TimeSpan.FromSeconds(30), HeartbeatInterval = TimeSpan.FromSeconds(1) }, 0.1, _time, sendHeartbeat: null);
    }

    public void Dispose() => _cache.Dispose();

    [Fact]
    public void Nothing_is_served_before_the_first_heartbeat_comes_back()
    {
        var session = Snapshot(version: 1);
        Load(session);

        Assert.False(_cache.TryGet(session.Id!, out _, out _));
    }

    [Fact]
    public void A_loaded_session_is_served_from_memory()
    {
        Beat();
        var session = Snapshot(version: 1);
        Load(session);

        Assert.True(_cache.TryGet(session.Id!, out var cached, out var touchDue));
        Assert.Same(session, cached);
        Assert.False(touchDue);
    }

    [Fact]
    public void An_invalidation_that_overtakes_a_load_keeps_it_out_of_the_cache()
    {
        Beat();
        var session = Snapshot(version: 1);
        var load = _cache.BeginLoad(session.Id!);
        _cache.Invalidate(session.Id!, 2);
        _cache.CompleteLoad(load, session, _time.GetUtcNow());

        Assert.False(_cache.TryGet(session.Id!, out _, out _));
    }

    [Fact]
    public void An_invalidation_drops_an_older_copy_and_keeps_one_at_its_version()
    {
        Beat();
        var session = Snapshot(version: 3);
        Load(session);

        _cache.Invalidate(session.Id!, 3);
        Assert.True(_cache.TryGet(session.Id!, out _, out _));

        _cache.Invalidate(session.Id!, 4);
        Assert.False(_cache.TryGet(session.Id!, out _, out _));
    }

    [Fact]
    public void A_deletion_drops_the_copy()
    {
        Beat();
        var session = Snapshot(version: 3);
        Load(session);

        _cache.Invalidate(session.Id!, NearCache.Gone);

        Assert.False(_cache.TryGet(session.Id!, out _, out _));
    }

    [Fact]
    public void A_heartbeat_that_comes_back_late_proves_the_channel_only_as_of_when_it_was_sent()
    {
        Beat();
        var session = Snapshot(version: 1);
        Load(session);

        // The channel runs 2.5 intervals late: each heartbeat comes back in time to keep the last one received recent.
        var sent = _cache.NextHeartbeat();
        _time.Advance(TimeSpan.FromSeconds(2.5));
        _cache.HeartbeatReceived(sent);
        Assert.True(_cache.TryGet(session.Id!, out _, out _));

        // One interval on, the proof is 3.5 intervals old although it arrived 1 interval ago: an invalidation sent
        // since may still be on its way, so nothing is served.
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.False(_cache.TryGet(session.Id!, out _, out _));
    }

    [Fact]
    public void A_channel_that_goes_down_empties_the_cache_until_a_later_heartbeat_returns()
    {
        var before = _cache.NextHeartbeat();
        _cache.HeartbeatReceived(before);
        var session = Snapshot(version: 1);
        Load(session);

        _cache.ChannelDown();
        Assert.False(_cache.TryGet(session.Id!, out _, out _));
        Assert.Equal(0, _cache.Count);

        // A heartbeat sent before the channel went down proves nothing about the new subscription.
        _cache.HeartbeatReceived(before);
        Load(session);
        Assert.False(_cache.TryGet(session.Id!, out _, out _));

        Beat();
        Load(session);
        Assert.True(_cache.TryGet(session.Id!, out _, out _));
    }

    [Fact]
    public void A_load_that_began_before_the_channel_went_down_is_not_cached()
    {
        Beat();
        var session = Snapshot(version: 1);
        var load = _cache.BeginLoad(session.Id!);
        _cache.ChannelDown();
        Beat();
        _cache.CompleteLoad(load, session, _time.GetUtcNow());

        Assert.False(_cache.TryGet(session.Id!, out _, out _));
    }

    [Fact]
    public void A_quiet_channel_turns_the_cache_off_after_three_heartbeat_intervals()
    {
        Beat();
        var session = Snapshot(version: 1);
        Load(session);

        _time.Advance(TimeSpan.FromSeconds(2.9));
        Assert.True(_cache.TryGet(session.Id!, out _, out _));

        _time.Advance(TimeSpan.FromSeconds(0.2));
        Assert.False(_cache.TryGet(session.Id!, out _, out _));
        Assert.Equal(0, _cache.Count);
    }

    [Fact]
    public void A_copy_lives_at_most_the_maximum_age()
    {
        var session = Snapshot(version: 1);
        Beat();
        Load(session);

        for (var i = 0; i < 29; i++)
        {
            Pass(TimeSpan.FromSeconds(1));
        }

        Assert.True(_cache.TryGet(session.Id!, out _, out _));
        Pass(TimeSpan.FromSeconds(1));
        Assert.False(_cache.TryGet(session.Id!, out _, out _));
    }

    [Fact]
    public void A_copy_never_outlives_the_session_as_the_store_saw_it_whatever_the_nodes_wall_clock_says()
    {
        Beat();
        var storeNow = _time.GetUtcNow();
        var session = new SessionSnapshot(Id(), storeNow, storeNow, TimeSpan.FromSeconds(5), storeNow.AddHours(1), null, 1, new Dictionary<string, byte[]>());

        // The node's wall clock is an hour behind the store's: only the remaining lifetime counts.
        _cache.CompleteLoad(_cache.BeginLoad(session.Id!), session, storeNow);
        Pass(TimeSpan.FromSeconds(4.9));
        Assert.True(_cache.TryGet(session.Id!, out _, out _));
        Pass(TimeSpan.FromSeconds(0.2));
        Assert.False(_cache.TryGet(session.Id!, out _, out _));
    }

    [Fact]
    public void A_touch_is_due_after_the_touch_fraction_of_the_idle_timeout()
    {
        Beat();
        var session = Snapshot(version: 1, idle: TimeSpan.FromSeconds(20));
        Load(session);

        Pass(TimeSpan.FromSeconds(1.9));
        Assert.True(_cache.TryGet(session.Id!, out _, out var due));
        Assert.False(due);

        Pass(TimeSpan.FromSeconds(0.2));
        Assert.True(_cache.TryGet(session.Id!, out _, out due));
        Assert.True(due);
        Assert.True(_cache.TryBeginTouch(session.Id!));
        Assert.False(_cache.TryBeginTouch(session.Id!));
        Assert.True(_cache.TryGet(session.Id!, out _, out due));
        Assert.False(due);
    }

    [Fact]
    public void This_nodes_save_becomes_the_cached_state_when_it_follows_the_cached_version()
    {
        Beat();
        var session = Snapshot(version: 4, attributes: new() { ["a"] = [1], ["b"] = [2] });
        Load(session);

        _cache.Saved(new SessionChanges(session.Id!, new Dictionary<string, byte[]> { ["a"] = [9] }, ["b"]), newVersion: 5);
        _cache.Invalidate(session.Id!, 5);

        Assert.True(_cache.TryGet(session.Id!, out var cached, out _));
        Assert.Equal(5, cached.Version);
        Assert.Equal([9], cached.Attributes["a"]);
        Assert.False(cached.Attributes.ContainsKey("b"));
    }

    [Fact]
    public void This_nodes_save_over_an_unseen_change_drops_the_copy()
    {
        Beat();
        var session = Snapshot(version: 4);
        Load(session);

        _cache.Saved(new SessionChanges(session.Id!, new Dictionary<string, byte[]> { ["a"] = [9] }), newVersion: 6);

        Assert.False(_cache.TryGet(session.Id!, out _, out _));
    }

    [Fact]
    public void A_save_during_a_load_keeps_the_load_out_of_the_cache()
    {
        Beat();
        var session = Snapshot(version: 4);
        var load = _cache.BeginLoad(session.Id!);
        _cache.Saved(new SessionChanges(session.Id!, new Dictionary<string, byte[]> { ["a"] = [9] }), newVersion: 5);
        _cache.CompleteLoad(load, session, _time.GetUtcNow());

        Assert.False(_cache.TryGet(session.Id!, out _, out _));
    }

    [Fact]
    public void Memory_stays_under_the_size_limit_by_dropping_the_least_recently_used()
    {
        using var cache = new NearCache(new NearCacheOptions { Enabled = true, SizeLimit = 100_000 }, 0.1, _time, sendHeartbeat: null);
        cache.HeartbeatReceived(cache.NextHeartbeat());
        var first = Snapshot(version: 1, attributes: new() { ["v"] = new byte[1000] });
        cache.CompleteLoad(cache.BeginLoad(first.Id!), first, _time.GetUtcNow());
        for (var i = 0; i < 500; i++)
        {
            _time.Advance(TimeSpan.FromMilliseconds(1));
            Assert.True(cache.TryGet(first.Id!, out _, out _));
            var other = Snapshot(version: 1, attributes: new() { ["v"] = new byte[1000] });
            cache.CompleteLoad(cache.BeginLoad(other.Id!), other, _time.GetUtcNow());
            Assert.True(cache.Size <= 100_000 + 2_000, $"size {cache.Size}");
        }

        Assert.True(cache.TryGet(first.Id!, out _, out _));
        Assert.InRange(cache.Count, 50, 100);
    }

    [Fact]
    public async Task Concurrent_loads_invalidations_and_reads_never_serve_a_version_older_than_the_last_invalidation()
    {
        Beat();
        var id = Id();
        long stored = 0, acknowledged = 0;
        var stop = DateTime.UtcNow.AddSeconds(2);
        var writer = Task.Run(() =>
        {
            for (var v = 1; v <= 20_000 && DateTime.UtcNow < stop; v++)
            {
                // The store holds the new version, its invalidation arrives, then the write counts as acknowledged.
                Volatile.Write(ref stored, v);
                _cache.Invalidate(id, v);
                Volatile.Write(ref acknowledged, v);
            }
        });
        var readers = Enumerable.Range(0, 3).Select(reader => Task.Run(() =>
        {
            var stale = 0;
            for (var i = 0; i < 20_000 && DateTime.UtcNow < stop; i++)
            {
                var floor = Volatile.Read(ref acknowledged);
                if (_cache.TryGet(id, out var cached, out _))
                {
                    stale += cached.Version < floor ? 1 : 0;
                    continue;
                }

                var load = _cache.BeginLoad(id);
                var read = Snapshot(Volatile.Read(ref stored), id: id);
                _cache.CompleteLoad(load, read, _time.GetUtcNow());
            }

            return stale;
        })).ToArray();

        await writer;
        Assert.All(await Task.WhenAll(readers), stale => Assert.Equal(0, stale));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task An_end_racing_this_nodes_save_leaves_no_copy(bool heardFromChannel)
    {
        // The end (this node's delete or id change: Remove; another node's, or a revocation: an invalidation to Gone) and
        // the save's mirror run at once; whichever lands first, no copy of the ended session may stay.
        var leftover = await RaceAsync(
            writes: 1,
            id =>
            [
                () =>
                {
                    _cache.Saved(new SessionChanges(id, new Dictionary<string, byte[]> { ["raced"] = [1] }), newVersion: 2);
                    _cache.EndWrite(id);
                },
                () =>
                {
                    if (heardFromChannel)
                    {
                        _cache.Invalidate(_cache.KeyOf(id), NearCache.Gone);
                    }
                    else
                    {
                        _cache.Remove(id);
                    }
                },
            ],
            id => _cache.TryPeek(id) is not null);

        Assert.Equal(0, leftover);
    }

    [Fact]
    public async Task Two_saves_of_this_node_mirrored_at_once_leave_the_newer_copy_or_none()
    {
        // Saves to versions 2 and 3 return together; whichever mirrors first, the copy of version 2 must not outlive them.
        var stale = await RaceAsync(
            writes: 2,
            id => [.. Enumerable.Range(2, 2).Select(version => (Action)(() =>
            {
                _cache.Saved(new SessionChanges(id, new Dictionary<string, byte[]> { ["n"] = [(byte)version] }), newVersion: version);
                _cache.EndWrite(id);
            }))],
            id => _cache.TryPeek(id) is { Version: < 3 });

        Assert.Equal(0, stale);
    }

    // Rounds (at most 200,000, at most 2 s) of a fresh cached session with `writes` own writes begun, the actions run at
    // once on pool threads; returns the rounds after which `wrong` held.
    private async Task<int> RaceAsync(int writes, Func<string, Action[]> actions, Func<string, bool> wrong)
    {
        Beat();
        var count = 0;
        var stop = DateTime.UtcNow.AddSeconds(2);
        for (var round = 0; round < 200_000 && DateTime.UtcNow < stop; round++)
        {
            var session = Snapshot(version: 1);
            var id = session.Id!;
            Load(session);
            for (var i = 0; i < writes; i++)
            {
                _cache.BeginWrite(id);
            }

            using var start = new ManualResetEventSlim();
            var running = actions(id).Select(action => Task.Run(() =>
            {
                start.Wait();
                action();
            })).ToArray();
            start.Set();
            await Task.WhenAll(running);
            count += wrong(id) ? 1 : 0;
        }

        return count;
    }

    private void Beat() => _cache.HeartbeatReceived(_cache.NextHeartbeat());

    // Time passes with the channel working: a heartbeat is sent and comes back at once.
    private void Pass(TimeSpan time)
    {
        _time.Advance(time);
        Beat();
    }

    private void Load(SessionSnapshot session) => _cache.CompleteLoad(_cache.BeginLoad(session.Id!), session, _time.GetUtcNow());

    private SessionSnapshot Snapshot(long version, TimeSpan? idle = null, Dictionary<string, byte[]>? attributes = null, string? id = null)
    {
        var now = _time.GetUtcNow();
        return new SessionSnapshot(id ?? Id(), now, now, idle ?? TimeSpan.FromMinutes(20), now.AddHours(3), null, version, attributes ?? []);
    }

    private static string Id() => SessionId.Create();
}
