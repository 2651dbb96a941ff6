using System.Diagnostics;
using System.Diagnostics.Metrics;
using ClusterSession.Testing.Servers;
using StackExchange.Redis;
using Xunit;
using Xunit.Abstractions;

namespace ClusterSession.Redis.Tests;

/// <summary>
/// Ends of a session (delete, revoke, the old id of an id change) return only once every other live node applied the
/// invalidation (docs/near-cache.md, "Ends are acknowledged"): a read on another node right after the end never
/// accepts the session; a live node that does not acknowledge delays the end by four heartbeat intervals at most (until it must have stopped serving copies).
/// </summary>
/// <remarks>The reads at once after ends on another node (2,000 each of delete, id change, revoke by user: 0 accepted) are
/// in <see cref="NearCacheAcrossNodesTests"/>.</remarks>
[Collection(StandaloneRedis.Name)]
public sealed class NearCacheEndAcknowledgementTests(RedisServerFixture server, ITestOutputHelper output) : IAsyncLifetime
{
    private readonly List<ConnectionMultiplexer> _multiplexers = [];
    private readonly List<RedisSessionStore> _stores = [];

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var store in _stores)
        {
            await store.DisposeAsync();
        }

        foreach (var multiplexer in _multiplexers)
        {
            await multiplexer.DisposeAsync();
        }
    }

    [Fact]
    public async Task An_end_returns_once_a_live_node_that_does_not_acknowledge_must_have_stopped_serving_four_intervals_later()
    {
        var interval = TimeSpan.FromMilliseconds(500);
        var prefix = TestStores.UniquePrefix();
        var (a, connection) = await NodeAsync(prefix, interval);
        var (b, _) = await NodeAsync(prefix, interval);

        // A third node whose subscription stopped delivering: its heartbeats still reach the others (they go out on its
        // interactive connection), but it hears nothing, so it never acknowledges.
        var deaf = "0123456789abcdef";
        using var stop = new CancellationTokenSource();
        var heartbeats = Task.Run(async () =>
        {
            for (var n = 1; !stop.IsCancellationRequested; n++)
            {
                await connection.GetSubscriber().PublishAsync(RedisChannel.Literal(a.NearCacheChannel!), $"h:{deaf}:{n}+");
                try
                {
                    await Task.Delay(interval / 4, stop.Token);
                }
                catch (OperationCanceledException)
                {
                }
            }
        });

        using var listener = new MeterListener();
        long counted = 0;
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == "ClusterSession.NearCache" && instrument.Name == "cluster_session.near_cache.unacknowledged_ends")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, value, _, _) => Interlocked.Add(ref counted, value));
        listener.Start();

        try
        {
            await UntilAsync(() => a.NearCacheLivePeers == 2);
            var session = NewSession();
            await a.CreateAsync(session);
            Assert.NotNull(await b.LoadAsync(session.Id!));
            Assert.NotNull(await b.LoadAsync(session.Id!));

            var started = Stopwatch.GetTimestamp();
            Assert.True(await a.DeleteAsync(session.Id!));
            var took = Stopwatch.GetElapsedTime(started);
            output.WriteLine($"delete with a live node that does not acknowledge: {took.TotalMilliseconds:0.0} ms (interval {interval.TotalMilliseconds:0} ms)");

            // Its copies live at most 3 intervals after its last heartbeat came back, which is before the end was announced
            // plus one interval: the writer waits 4 intervals from sending the end (docs/near-cache.md, "Never stale").
            Assert.InRange(took, interval * 3.6, (interval * 4) + TimeSpan.FromSeconds(1));
            Assert.Equal(1, a.NearCacheUnacknowledgedEnds);
            Assert.True(Interlocked.Read(ref counted) >= 1, "the unacknowledged end was not counted in cluster_session.near_cache.unacknowledged_ends");

            // B acknowledged, so it had dropped its copy by then.
            Assert.Null(await b.LoadAsync(session.Id!));
        }
        finally
        {
            await stop.CancelAsync();
            await heartbeats;
        }

        // Once the silent node's heartbeats are 10 intervals old it is no longer waited for.
        await UntilAsync(() => a.NearCacheLivePeers == 1);
        var next = NewSession();
        await a.CreateAsync(next);
        Assert.NotNull(await b.LoadAsync(next.Id!));
        var again = Stopwatch.GetTimestamp();
        Assert.True(await a.DeleteAsync(next.Id!));
        Assert.True(Stopwatch.GetElapsedTime(again) < interval, "an end waited although every live node acknowledges");
        Assert.Equal(1, a.NearCacheUnacknowledgedEnds);
        Assert.Null(await b.LoadAsync(next.Id!));
    }

    [Fact]
    public async Task A_node_that_stopped_is_not_waited_for()
    {
        // Ten seconds: long enough that an end waiting for the stopped node would show.
        var interval = TimeSpan.FromSeconds(10);
        var prefix = TestStores.UniquePrefix();
        var (a, _) = await NodeAsync(prefix, interval);
        var (b, _) = await NodeAsync(prefix, interval);
        await UntilAsync(() => a.NearCacheLivePeers == 1);

        _stores.Remove(b);
        await b.DisposeAsync();
        await UntilAsync(() => a.NearCacheLivePeers == 0);

        var session = NewSession();
        await a.CreateAsync(session);
        var started = Stopwatch.GetTimestamp();
        Assert.True(await a.DeleteAsync(session.Id!));
        Assert.True(Stopwatch.GetElapsedTime(started) < interval / 2, "an end waited for a node that had stopped");
        Assert.Equal(0, a.NearCacheUnacknowledgedEnds);
    }

    private async Task<(RedisSessionStore Store, ConnectionMultiplexer Connection)> NodeAsync(string prefix, TimeSpan interval)
    {
        var multiplexer = await ConnectionMultiplexer.ConnectAsync(server.Configuration);
        _multiplexers.Add(multiplexer);
        var options = new RedisSessionStoreOptions { KeyPrefix = prefix, NearCache = new NearCacheOptions { Enabled = true, HeartbeatInterval = interval } };
        var store = new RedisSessionStore(multiplexer, options);
        _stores.Add(store);
        await NearStores.UntilUsableAsync(store);
        return (store, multiplexer);
    }

    private static SessionSnapshot NewSession()
        => SessionSnapshot.CreateNew(SessionId.Create(), DateTimeOffset.UtcNow, TimeSpan.FromMinutes(20), TimeSpan.FromHours(2), new Dictionary<string, byte[]> { ["n"] = [1] }, null);

    private static async Task UntilAsync(Func<bool> condition)
    {
        var deadline = Stopwatch.GetTimestamp() + Stopwatch.Frequency * 10;
        while (!condition())
        {
            Assert.True(Stopwatch.GetTimestamp() < deadline, "the nodes did not hear each other's heartbeats within 10 s");
            await Task.Delay(20);
        }
    }
}
