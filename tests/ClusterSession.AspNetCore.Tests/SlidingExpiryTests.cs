using System.Net;
using ClusterSession.AspNetCore.Resilience;
using ClusterSession.AspNetCore.Sessions;
using ClusterSession.InMemory;
using ClusterSession.Redis;
using ClusterSession.Testing.Servers;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace ClusterSession.AspNetCore.Tests;

/// <summary>
/// Sliding expiry as AddSession() has it: requests that carry the session id but never use the session keep it
/// alive, through a touch after the response, at most once per node and throttle interval. Inherited once per
/// store; the store's clock is the test's FakeTimeProvider.
/// </summary>
public abstract class SlidingExpiryTests : IAsyncLifetime
{
    private const string CookieName = ".ClusterSession";
    private static readonly TimeSpan Interval = new ClusterSessionOptions().IdleTimeout * SessionToucher.IntervalFraction;
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
    private readonly DirectoryInfo _keys = Directory.CreateTempSubdirectory("cs-keys-");
    private readonly List<Node> _nodes = [];
    private ISessionStore? _store;

    private ISessionStore Store => _store!;

    /// <summary>Creates an empty store that no other test sees, dating everything with <paramref name="time"/>.</summary>
    protected abstract ISessionStore CreateStore(TimeProvider time);

    public async Task InitializeAsync()
    {
        _store = CreateStore(_time);
        for (var i = 0; i < 2; i++)
        {
            _nodes.Add(await Node.StartAsync(Store, _time, _keys));
        }
    }

    public async Task DisposeAsync()
    {
        foreach (var node in _nodes)
        {
            await node.DisposeAsync();
        }

        switch (Store)
        {
            case IAsyncDisposable asyncDisposable:
                await asyncDisposable.DisposeAsync();
                break;
            case IDisposable disposable:
                disposable.Dispose();
                break;
        }

        _keys.Delete(recursive: true);
    }

    [Fact]
    public async Task Burst_of_100_requests_of_one_session_costs_at_most_one_touch_per_node_and_interval()
    {
        var browser = new Browser();
        await browser.PostAsync(_nodes[0].Address, "/s/set/a/1");
        _time.Advance(Interval);
        ResetCounts();

        await BurstAsync(browser, 100);

        // Both nodes' intervals have passed: one touch each, however many requests raced for it.
        Assert.All(_nodes, n => Assert.Equal(1, n.Store.Calls("load")));
        Assert.All(_nodes, n => Assert.Equal(0, n.Store.Writes));

        await BurstAsync(browser, 100);
        Assert.All(_nodes, n => Assert.Equal(1, n.Store.Calls("load")));

        _time.Advance(Interval);
        await BurstAsync(browser, 100);
        Assert.All(_nodes, n => Assert.Equal(2, n.Store.Calls("load")));
        Assert.All(_nodes, n => Assert.Equal(0, n.Store.Writes));
    }

    [Fact]
    public async Task Session_outlives_its_idle_timeout_while_only_pages_without_the_session_are_visited()
    {
        var active = new Browser();
        var idle = new Browser();
        await active.PostAsync(_nodes[0].Address, "/s/set/a/1");
        await idle.PostAsync(_nodes[0].Address, "/s/set/a/1");
        var idleTimeout = new ClusterSessionOptions().IdleTimeout;

        // Three idle timeouts of browsing, two requests a minute on each node.
        var elapsed = TimeSpan.Zero;
        var requests = 0;
        while (elapsed < 3 * idleTimeout)
        {
            _time.Advance(TimeSpan.FromMinutes(1));
            elapsed += TimeSpan.FromMinutes(1);
            foreach (var node in _nodes.Concat(_nodes))
            {
                Assert.Equal(HttpStatusCode.OK, (await node.SendAsync(active, "/noop")).Status);
                await node.UntilSettledAsync();
                requests++;
            }
        }

        // At most one touch per node and interval, not one per request.
        var touches = _nodes.Sum(n => n.Store.Calls("load"));
        var intervals = (int)(elapsed / Interval);
        Assert.Equal(240, requests);
        Assert.InRange(touches, intervals, _nodes.Count * (intervals + 1));

        Assert.Equal("1", (await active.GetAsync(_nodes[1].Address, "/s/get/a")).Body);
        Assert.Equal("(none)", (await idle.GetAsync(_nodes[1].Address, "/s/get/a")).Body);
    }

    [Fact]
    public async Task Touch_of_an_unknown_or_expired_id_creates_nothing()
    {
        var stranger = new Browser();
        var forged = SessionId.Create();
        stranger.Cookies[CookieName] = forged;
        var expired = new Browser();
        await expired.PostAsync(_nodes[0].Address, "/s/set/a/1");
        var expiredId = expired.Cookies[CookieName];
        _time.Advance(new ClusterSessionOptions().IdleTimeout + TimeSpan.FromMinutes(1));
        ResetCounts();

        Assert.Equal(HttpStatusCode.OK, (await _nodes[1].SendAsync(stranger, "/noop")).Status);
        Assert.Equal(HttpStatusCode.OK, (await _nodes[0].SendAsync(expired, "/noop")).Status);
        await _nodes[0].UntilSettledAsync();
        await _nodes[1].UntilSettledAsync();

        Assert.Equal(2, _nodes.Sum(n => n.Store.Calls("load")));
        Assert.All(_nodes, n => Assert.Equal(0, n.Store.Writes));
        Assert.Null(await Store.LoadAsync(forged));
        Assert.Null(await Store.LoadAsync(expiredId));
        Assert.Equal(0, await Store.CountAsync());
    }

    [Fact]
    public void Throttle_table_stays_within_its_capacity()
    {
        var toucher = new SessionToucher(_nodes[0].Services.GetRequiredService<SessionRuntime>(), capacity: 1_000);

        for (var i = 0; i < 10_000; i++)
        {
            Assert.True(toucher.TryClaim(SessionId.Create()));
        }

        Assert.InRange(toucher.TrackedSessions, 1, 1_000);
    }

    private void ResetCounts()
    {
        foreach (var node in _nodes)
        {
            node.Store.ResetCounts();
        }
    }

    private async Task BurstAsync(Browser browser, int requests)
    {
        var responses = await Task.WhenAll(Enumerable.Range(0, requests).Select(i =>
            Task.Run(() => _nodes[i % _nodes.Count].SendAsync(browser, "/noop"))));
        Assert.All(responses, r => Assert.Equal(HttpStatusCode.OK, r.Status));
        foreach (var node in _nodes)
        {
            await node.UntilSettledAsync();
        }
    }

    /// <summary>One app instance with its own counting decorator around the shared real store.</summary>
    private sealed class Node : IAsyncDisposable
    {
        private readonly TestApp _app;
        private int _sent;
        private int _completed;

        private Node(TestApp app, ObservedStore store)
        {
            _app = app;
            Store = store;
        }

        public ObservedStore Store { get; }

        public Uri Address => _app.Address;

        public IServiceProvider Services => _app.Services;

        public static async Task<Node> StartAsync(ISessionStore store, TimeProvider time, DirectoryInfo keys)
        {
            var observed = new ObservedStore(store);
            Node? node = null;
            var app = await TestApp.StartCoreAsync(
                keys,
                services =>
                {
                    services.AddSingleton(time);
                    services.AddClusterSession(options => options.UseStore(_ => observed));
                },
                app =>
                {
                    // Registered first, so its OnCompleted runs last: after the session's own (which starts the touch).
                    app.Use((context, next) =>
                    {
                        context.Response.OnCompleted(() =>
                        {
                            Interlocked.Increment(ref node!._completed);
                            return Task.CompletedTask;
                        });
                        return next(context);
                    });
                    app.UseClusterSession();
                });
            node = new Node(app, observed);
            return node;
        }

        public Task<Response> SendAsync(Browser browser, string path)
        {
            Interlocked.Increment(ref _sent);
            return browser.GetAsync(Address, path);
        }

        /// <summary>Waits until every request sent has completed on the server and no touch is in flight.</summary>
        public async Task UntilSettledAsync()
        {
            var toucher = Services.GetRequiredService<SessionToucher>();
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
            while (Volatile.Read(ref _completed) < Volatile.Read(ref _sent) || toucher.InFlight > 0)
            {
                Assert.True(DateTime.UtcNow < deadline, "Requests or touches did not finish within 10 s.");
                await Task.Delay(10);
            }
        }

        public ValueTask DisposeAsync() => _app.DisposeAsync();
    }
}

public sealed class InMemorySlidingExpiryTests : SlidingExpiryTests
{
    protected override ISessionStore CreateStore(TimeProvider time) => new InMemorySessionStore(timeProvider: time);
}

[Collection(AspNetCoreRedis.Name)]
public sealed class RedisSlidingExpiryTests(RedisServerFixture redis) : SlidingExpiryTests
{
    protected override ISessionStore CreateStore(TimeProvider time)
        => new RedisSessionStore(
            new RedisSessionStoreOptions { Configuration = redis.Configuration, KeyPrefix = "slide" + Guid.NewGuid().ToString("N")[..12] + ":" },
            time);
}
