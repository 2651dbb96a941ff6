using System.Diagnostics;
using System.Net;
using ClusterSession.Redis;
using ClusterSession.Testing.Servers;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Xunit.Abstractions;

namespace ClusterSession.AspNetCore.Tests;

/// <summary>
/// One store deadline per request: all store calls of a request share <c>StoreTimeout</c>, measured against a real
/// redis-server that is paused (SIGSTOP), and against the same server behind calls that are slow but answer.
/// </summary>
public sealed class RequestDeadlineTests(RedisServerFixture redis, ITestOutputHelper output) : IClassFixture<RedisServerFixture>, IAsyncLifetime
{
    private static readonly TimeSpan StoreTimeout = TimeSpan.FromMilliseconds(1500);

    // Less than one more StoreTimeout: a request that waited for two calls cannot pass.
    private static readonly TimeSpan Margin = TimeSpan.FromMilliseconds(1000);

    private AppCluster? _cluster;

    public async Task InitializeAsync()
    {
        Assert.True(redis.OwnsProcess, "This test pauses its Redis server; it needs a server of its own, not CLUSTERSESSION_REDIS.");

        // The store's own deadline is far longer, so only StoreTimeout ends a call.
        var store = new RedisSessionStore(new RedisSessionStoreOptions { Configuration = redis.Configuration, OperationTimeout = TimeSpan.FromSeconds(30) });
        await RedisFailFastTests.UntilAnswersAsync(store);
        _cluster = await AppCluster.StartAsync(
            store,
            instances: 1,
            options =>
            {
                options.StoreTimeout = StoreTimeout;
                options.CircuitBreaker.FailureThreshold = 50;
            },
            map: static (_, app) =>
            {
                app.MapGet("/t/three-loads", (Delegate)ThreeLoadsAsync);
                app.MapPost("/t/three-updates", (Delegate)ThreeUpdatesAsync);
            });
    }

    public async Task DisposeAsync() => await _cluster!.DisposeAsync();

    [Fact]
    public async Task Three_store_calls_of_one_request_against_a_paused_redis_end_within_one_store_timeout()
    {
        var browser = new Browser();
        Assert.Equal(HttpStatusCode.OK, (await browser.PostAsync(_cluster![0], "/s/set/a/1")).Status);
        var loadsBefore = _cluster.Store.Calls("load");

        await redis.PauseAsync();
        TimeSpan elapsed;
        Response response;
        try
        {
            var watch = Stopwatch.StartNew();
            response = await browser.GetAsync(_cluster[0], "/t/three-loads");
            elapsed = watch.Elapsed;
        }
        finally
        {
            await redis.ResumeAsync();
        }

        output.WriteLine($"three loads against a paused redis-server: {(int)response.Status} after {elapsed.TotalMilliseconds:0} ms (StoreTimeout {StoreTimeout.TotalMilliseconds:0} ms)");
        Assert.Equal("3 failed", response.Body);
        Assert.InRange(elapsed, StoreTimeout - TimeSpan.FromMilliseconds(50), StoreTimeout + Margin);

        // Only the first call reached the store; the other two failed at once, the deadline having passed.
        Assert.Equal(1, _cluster.Store.Calls("load") - loadsBefore);

        // The deadline is the request's: the next request has a whole StoreTimeout again.
        Assert.Equal("1", (await browser.GetAsync(_cluster[0], "/s/get/a")).Body);
    }

    [Fact]
    public async Task Store_calls_that_are_each_slow_but_in_time_fail_the_request_once_together_they_pass_the_store_timeout()
    {
        var browser = new Browser();
        Assert.Equal(HttpStatusCode.OK, (await browser.PostAsync(_cluster![0], "/s/set/a/1")).Status);

        // Each call takes 60 % of StoreTimeout: alone in time, together (a load and three compare-and-sets) not.
        _cluster.Store.SlowCalls = StoreTimeout * 0.6;
        TimeSpan elapsed;
        Response response;
        try
        {
            var watch = Stopwatch.StartNew();
            response = await browser.PostAsync(_cluster[0], "/t/three-updates");
            elapsed = watch.Elapsed;
        }
        finally
        {
            _cluster.Store.SlowCalls = TimeSpan.Zero;
        }

        output.WriteLine($"a load and three compare-and-sets of {(StoreTimeout * 0.6).TotalMilliseconds:0} ms each: {(int)response.Status} after {elapsed.TotalMilliseconds:0} ms (StoreTimeout {StoreTimeout.TotalMilliseconds:0} ms)");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.Status);
        Assert.InRange(elapsed, StoreTimeout - TimeSpan.FromMilliseconds(50), StoreTimeout + Margin);
        Assert.Equal(HttpStatusCode.OK, (await browser.PostAsync(_cluster[0], "/t/three-updates")).Status);
    }

    /// <summary>An application that handles a store failure itself and tries again, three times in one request.</summary>
    private static async Task<string> ThreeLoadsAsync(HttpContext context)
    {
        var failures = 0;
        for (var i = 0; i < 3; i++)
        {
            try
            {
                await context.Session.LoadAsync();
            }
            catch (SessionStoreUnavailableException)
            {
                failures++;
            }
        }

        return failures + " failed";
    }

    /// <summary>A load, then three compare-and-sets: four store calls in one request.</summary>
    private static async Task<string> ThreeUpdatesAsync(HttpContext context)
    {
        var session = await context.GetClusterSessionAsync();
        for (var i = 0; i < 3; i++)
        {
            await session.UpdateAsync<int>("n", n => n + 1);
        }

        return "done";
    }
}
